"""The ``check`` subcommand: arguments in, lines (or JSON) out, an exit status that says whether to deploy."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .model import Check

USAGE_ERROR = 2


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("check", help="the pre-deploy checklist: settings, database, migrations, Supabase, keys")
    p.add_argument("--env-file", type=Path, help="read settings from this file (default: .env then .env.local)")
    p.add_argument("--migrations", type=Path, default=Path("supabase/migrations"), help="the migrations to expect")
    p.add_argument("--url", help="after deploy: check the API at this URL instead (its health and a test message)")
    p.add_argument("--console-url", help="after deploy: check the operator console at this URL too (its health)")
    p.add_argument("--json", action="store_true", help='print {"ok": …, "checks": […]} for machines')
    p.add_argument("--timeout", type=float, default=10.0, help="seconds each check may take (default 10)")


def run(args: argparse.Namespace) -> int:
    from ..config import ENV_FILES
    from . import console
    from .model import all_ok, render_json, render_text  # here, so that other commands start without these imports
    from .runner import post_deploy, pre_deploy
    from .settings import read_values

    problem = _usage_problem(args)
    if problem is not None:
        print(f"❌ {problem}", file=sys.stderr)
        return USAGE_ERROR
    # realtime-py logs its own connection errors; the check reports them as one line instead.
    logging.getLogger("realtime").setLevel(logging.CRITICAL)
    env_files = [args.env_file] if args.env_file else [Path(name) for name in ENV_FILES if Path(name).is_file()]
    values = read_values(env_files)
    if args.url is not None or args.console_url is not None:
        intake_key = values.get("intake_api_key")
        checks = (
            asyncio.run(post_deploy(args.url, str(intake_key) if intake_key else None, args.timeout))
            if args.url is not None
            else []
        )
        if args.console_url is not None:
            checks += asyncio.run(_console_health(args.console_url, args.timeout))
    else:
        checks = asyncio.run(pre_deploy(values, args.migrations, args.timeout))
        checks += console.settings(console.read(env_files, dict(os.environ)))
    print(render_json(checks) if args.json else render_text(checks))
    return 0 if all_ok(checks) else 1


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.env_file is not None and not args.env_file.is_file():
        return f"no env file at {args.env_file}"
    if args.timeout <= 0:
        return "--timeout must be a positive number of seconds"
    if args.console_url is not None:
        parts = urlsplit(args.console_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return f"--console-url must be the console's http(s) address, not {args.console_url!r}"
    if args.url is not None:
        parts = urlsplit(args.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return f"--url must be the API's http(s) address, like https://api.example.com, not {args.url!r}"
    elif args.console_url is not None:
        return None
    elif not args.migrations.is_dir():
        return f"no migrations folder at {args.migrations}: run from the project root, or pass --migrations"
    return None


async def _console_health(base: str, within: float) -> list[Check]:
    import httpx

    from . import console

    async with httpx.AsyncClient(timeout=httpx.Timeout(within, connect=min(5.0, within))) as http:
        return await console.health(http, base.rstrip("/"))
