"""The ``operator`` subcommand: add, list, deactivate and activate operator accounts.

It talks to Supabase only through its APIs (Auth's admin API and PostgREST, with the service key from
``SUPABASE_URL`` and ``SUPABASE_SERVICE_ROLE_KEY``), so it works the same on the local stack and a real
project. Exit status: 0 done, 1 refused (the email is taken, or no such operator), 2 bad input or
settings, 3 Supabase failed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .config import Settings
    from .core.operators import Added, Operator, OperatorAccounts

DONE, REFUSED, USAGE, FAILED = 0, 1, 2, 3


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("operator", help="operator accounts: add, list, deactivate, activate")
    actions = p.add_subparsers(dest="action", required=True)
    add = actions.add_parser(
        "add", help="create an account (password from stdin when piped, else generated and printed once)"
    )
    add.add_argument("email")
    add.add_argument("--role", required=True, choices=("admin", "agent"), help="admin manages operators; agent reads")
    add.add_argument("--name", help="a name to show")
    actions.add_parser("list", help="every operator, with role and state")
    for name, help_text in (
        ("deactivate", "end an operator's access at once (REST, Realtime, sign-in); the account stays"),
        ("activate", "give a deactivated operator their access back"),
    ):
        actions.add_parser(name, help=help_text).add_argument("email")


def run(args: argparse.Namespace, stdin: TextIO | None = None) -> int:
    from .config import load_settings
    from .errors import AlreadyExists, ConfigError, InputError, NotFound, StoreError

    try:
        settings = load_settings()
        password = _piped_password(stdin or sys.stdin) if args.action == "add" else None
        return asyncio.run(_call(settings, args, password))
    except ConfigError as exc:
        return _fail(exc.message, USAGE)
    except (AlreadyExists, NotFound) as exc:
        return _fail(exc.message, REFUSED)
    except InputError as exc:
        return _fail(f"{exc.field}: {exc.message}", USAGE)
    except StoreError as exc:
        return _fail(f"{exc.message}\n   Is Supabase up? `neiromatrius check` tells what answers.", FAILED)


def _fail(message: str, status: int) -> int:
    print(f"❌ {message}", file=sys.stderr)
    return status


def _piped_password(stdin: TextIO) -> str | None:
    """A password piped in (its one line), or None in a terminal: one is generated then."""
    from .errors import InputError

    if stdin.isatty():
        return None
    password = stdin.readline().rstrip("\r\n")
    if not password:
        raise InputError("password", "stdin is empty: pipe a password in, or run in a terminal to get one generated")
    return password


async def _call(settings: Settings, args: argparse.Namespace, password: str | None) -> int:
    from . import composition
    from .adapters.supabase_operators import SupabaseAuthAdmin, SupabaseOperatorDirectory
    from .core.operators import OperatorAccounts, Role

    async with composition.open_resources(settings) as resources:
        supabase = resources.supabase
        accounts = OperatorAccounts(SupabaseAuthAdmin(supabase), SupabaseOperatorDirectory(supabase))
        if args.action == "add":
            _print_added(await accounts.add(args.email, Role(args.role), args.name, password))
        elif args.action == "list":
            await _print_list(accounts)
        else:
            operator = await accounts.set_active(args.email, args.action == "activate")
            if operator.active:
                print(f"✅ {operator.email} is active: they can sign in and read conversations again")
            else:
                print(f"✅ {operator.email} is deactivated: no sign-in, nothing to read (REST and Realtime)")
    return DONE


def _print_added(added: Added) -> None:
    operator = added.operator
    if added.existing_account:
        print(f"✅ {operator.email} is now an operator ({operator.role}): an existing Auth account, password unchanged")
        return
    print(f"✅ Operator added: {operator.email} ({operator.role})")
    if added.generated_password is not None:
        print(f"   password: {added.generated_password}")
        print("   It is shown only this once: hand it over safely; they can change it after signing in.")


async def _print_list(accounts: OperatorAccounts) -> None:
    operators = await accounts.list()
    if not operators:
        print("No operators yet: add one with `neiromatrius operator add EMAIL --role admin`")
        return
    rows = [("EMAIL", "ROLE", "STATE", "NAME", "SINCE"), *(_row(operator) for operator in operators)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _row(operator: Operator) -> tuple[str, str, str, str, str]:
    return (
        operator.email or f"(no account: {operator.user_id})",
        operator.role.value,
        "active" if operator.active else "deactivated",
        operator.display_name or "",
        operator.created_at.date().isoformat(),
    )
