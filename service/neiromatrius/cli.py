"""The ``neiromatrius`` command: ``api``, ``listener``, ``run`` (everything, locally), ``devstack``, ``token``,
``telegram``, ``check`` (the pre-deploy checklist), ``operator`` (operator accounts), ``console`` (the
operator console)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import logs, operator_command
from .check import command as check_command

if TYPE_CHECKING:
    from .config import Settings

T = TypeVar("T")


# Commands served by the local stack (``devstack/``, the ``neiromatrius-devstack`` distribution): a production
# install (the image, ``pip install .``) does not carry it, so these answer one line saying how to get it.
LOCAL_ONLY = frozenset({"devstack", "run", "token"})


def _local_stack_installed() -> bool:
    try:
        import neiromatrius_devstack  # noqa: F401
    except ImportError:
        return False
    return True


def _devstack_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name, help_text in (
        ("devstack", "run the local Supabase stack (Postgres, /rest/v1, /realtime/v1, /auth/v1)"),
        ("run", "run the whole system locally: the local stack, the API and the listener"),
    ):
        p = sub.add_parser(name, help=help_text)
        if name == "run":
            p.add_argument("--api-port", type=int, help="API port (default API_PORT, or 8000)")
            p.add_argument("--inbox-port", type=int, default=8001, help="the local webhook inbox's port (default 8001)")
        p.add_argument(
            "--seed",
            type=Path,
            default=Path("supabase/seed.sql") if name == "run" else None,
            help="SQL applied once, on a fresh data folder" + (" (default supabase/seed.sql)" if name == "run" else ""),
        )
        p.add_argument("--port", type=int, default=54321, help="gateway port (default 54321)")
        p.add_argument("--db-port", type=int, default=54322, help="embedded Postgres port (default 54322)")
        p.add_argument("--data-dir", type=Path, default=Path(".devstack"), help="where the data lives")
        p.add_argument("--env-file", type=Path, default=Path(".env.local"), help="write URL and keys here")
        p.add_argument("--migrations", type=Path, default=Path("supabase/migrations"))
        p.add_argument("--fresh", action="store_true", help="delete the data folder and start over")
        if name == "devstack":  # PostgREST settings Supabase leaves off
            p.add_argument("--db-aggregates-enabled", action="store_true", help="allow aggregates in select=")
            p.add_argument("--db-plan-enabled", action="store_true", help="answer Accept: application/vnd.pgrst.plan")


def _token_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("token", help="mint a user access token signed with the local stack's JWT secret")
    p.add_argument("--data-dir", type=Path, default=Path(".devstack"))
    p.add_argument("--sub", help="the user's id (a new UUID when omitted)")
    p.add_argument("--email")
    p.add_argument("--role", default="authenticated")
    p.add_argument("--lifetime", type=int, default=3600, help="seconds until it expires (default 3600)")


def _telegram_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("telegram", help="Telegram: register the webhook, or poll without a public URL")
    actions = p.add_subparsers(dest="action", required=True)
    hook = actions.add_parser("set-webhook", help="register URL (https) with the secret token")
    hook.add_argument("url", help="e.g. https://api.example.com/api/telegram/webhook")
    hook.add_argument("--drop-pending", action="store_true", help="discard updates waiting at Telegram")
    actions.add_parser("delete-webhook", help="unregister the webhook (polling needs this)")
    actions.add_parser("info", help="show the registered webhook and its last error")
    actions.add_parser("poll", help="long-poll for updates and store them (the listener answers)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="neiromatrius")
    sub = parser.add_subparsers(dest="command", required=True)
    _devstack_parser(sub)
    _token_parser(sub)
    _telegram_parser(sub)
    check_command.add_parser(sub)
    operator_command.add_parser(sub)
    sub.add_parser("api", help="serve the HTTP API (settings from the environment and .env)")
    sub.add_parser("listener", help="answer messages: realtime subscriber, OpenAI triage, delivery")
    console = sub.add_parser("console", help="the operator console (frontend/): build if changed, then serve it")
    console.add_argument("--build-only", action="store_true", help="build if the sources changed, then exit")
    args = parser.parse_args(argv)
    logs.configure(os.environ.get("LOG_LEVEL", "INFO"))
    if args.command in LOCAL_ONLY and not _local_stack_installed():
        print(f"❌ `neiromatrius {args.command}` needs the local stack, a separate distribution that a production "
              "install leaves out: pip install -e ./devstack (make run and make test install it).",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.command == "token":
        return _token(args)
    if args.command == "check":
        return check_command.run(args)
    if args.command == "operator":
        return operator_command.run(args)
    if args.command in ("api", "listener"):
        return _serve(args.command)
    if args.command == "run":
        return _run(args)
    if args.command == "telegram":
        return _telegram(args)
    if args.command == "console":
        from . import console as console_module

        return console_module.run(build_only=args.build_only)
    return _devstack(args)


def _run_loop(main: Coroutine[Any, Any, T]) -> T:
    """The long-running processes run on uvloop (uvicorn[standard] brings it): a cheaper event loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - every supported platform has it
        return asyncio.run(main)
    return uvloop.run(main)


def _serve(command: str) -> int:
    from .config import load_settings
    from .errors import ConfigError
    from .serve import serve_api, serve_listener

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"❌ {exc.message}", file=sys.stderr)
        return 2
    try:
        _run_loop(serve_api(settings) if command == "api" else serve_listener(settings))
    except ConfigError as exc:  # a setting that only proves wrong when used (a port in use)
        print(f"❌ {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


def _telegram(args: argparse.Namespace) -> int:
    from .config import load_settings
    from .errors import ConfigError, InputError, TelegramError
    from .serve import serve_telegram_poll

    try:
        settings = load_settings()
        if settings.telegram_bot_token is None:
            raise ConfigError("TELEGRAM_BOT_TOKEN", "is required for `neiromatrius telegram`")
    except ConfigError as exc:
        print(f"❌ {exc.message}", file=sys.stderr)
        return 2
    try:
        if args.action == "poll":
            return _run_loop(serve_telegram_poll(settings))
        return asyncio.run(_telegram_call(settings, args))
    except (InputError, TelegramError) as exc:
        print(f"❌ {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


async def _telegram_call(settings: Settings, args: argparse.Namespace) -> int:
    from . import composition, telegram

    async with composition.http_client(settings) as http:
        bot = composition.telegram_api(settings, http)
        assert bot is not None  # checked by the caller
        if args.action == "set-webhook":
            await telegram.set_webhook(bot, settings, args.url, drop_pending=args.drop_pending)
            print(f"✅ Webhook set: {args.url} (with the secret token; updates: message)")
        elif args.action == "delete-webhook":
            await telegram.delete_webhook(bot)
            print("✅ Webhook deleted: `neiromatrius telegram poll` can fetch updates now")
        info = await telegram.webhook_info(bot)
        print(f"   url: {info.get('url') or '(none)'}; pending updates: {info.get('pending_update_count', 0)}")
        if info.get("last_error_message"):
            print(f"   last error: {info['last_error_message']}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .local import LocalOptions, LocalSystem

    if not args.migrations.is_dir():
        print(f"❌ no migrations folder at {args.migrations}: run this from the project root, or pass --migrations.",
              file=sys.stderr)  # fmt: skip
        return 2

    api_port = args.api_port
    if api_port is None:
        raw = os.environ.get("API_PORT", "8000")
        if not raw.isdigit() or not 1 <= int(raw) <= 65535:
            print(f"❌ API_PORT: must be a port number (1-65535), not {raw!r}", file=sys.stderr)
            return 2
        api_port = int(raw)
    options = LocalOptions(
        port=args.port,
        db_port=args.db_port,
        api_port=api_port,
        data_dir=args.data_dir,
        env_file=args.env_file,
        migrations_dir=args.migrations,
        fresh=args.fresh,
        database_url=_external_database(args.db_port),
        inbox_port=args.inbox_port,
        seed_file=args.seed if args.seed is not None and args.seed.is_file() else None,
    )
    return LocalSystem(options).run()


def _token(args: argparse.Namespace) -> int:
    from neiromatrius_devstack import jwt
    from neiromatrius_devstack.state import SECRETS_FILE, load

    secrets = load(args.data_dir)
    if secrets is None:
        print(f"❌ no {args.data_dir / SECRETS_FILE}: start the stack once with `make run`.", file=sys.stderr)
        return 1
    token = jwt.user_token(secrets.jwt_secret, sub=args.sub, email=args.email, role=args.role, lifetime=args.lifetime)
    print(token)
    return 0


def _external_database(db_port: int) -> str | None:
    """``DATABASE_URL``, unless it names the embedded Postgres itself (a sourced ``.env.local``)."""
    url = os.environ.get("DATABASE_URL") or None
    if url is not None and f"@127.0.0.1:{db_port}/" in url:
        return None
    return url


def _devstack(args: argparse.Namespace) -> int:
    from neiromatrius_devstack.auth.settings import AuthSettings
    from neiromatrius_devstack.postgres import PostgresError
    from neiromatrius_devstack.runner import LocalStack, StackOptions

    try:
        auth_settings = AuthSettings.from_env(os.environ)
    except ValueError as exc:
        print(f"❌ {exc}", file=sys.stderr)
        return 2
    if args.seed is not None and not args.seed.is_file():
        print(f"❌ no seed file at {args.seed}", file=sys.stderr)
        return 2
    options = StackOptions(
        port=args.port,
        db_port=args.db_port,
        data_dir=args.data_dir,
        env_file=args.env_file,
        migrations_dir=args.migrations,
        fresh=args.fresh,
        database_url=_external_database(args.db_port),
        auth=auth_settings,
        aggregates_enabled=args.db_aggregates_enabled,
        plan_enabled=args.db_plan_enabled,
        seed_file=args.seed,
    )
    try:
        _run_loop(LocalStack(options).serve())
    except PostgresError as exc:
        print(f"❌ {exc}\n   Try `neiromatrius devstack --fresh`, or another --db-port.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
