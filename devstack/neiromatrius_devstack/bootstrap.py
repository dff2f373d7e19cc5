"""Apply the Supabase-like bootstrap (bootstrap.sql, then auth_schema.sql) to a database, idempotently."""

from __future__ import annotations

from importlib import resources

import asyncpg


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def bootstrap_sql(authenticator_password: str) -> str:
    text = _read("bootstrap.sql") + "\n" + _read("auth_schema.sql")
    return text.replace(":'authenticator_password'", quote_literal(authenticator_password))


async def bootstrap(conn: asyncpg.Connection, authenticator_password: str) -> None:
    """Run as a superuser. Safe to run on every start: every statement checks before it creates."""
    # One advisory lock, so two stacks starting on one database do not race on CREATE ROLE.
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(hashtext('neiromatrius.devstack.bootstrap'))")
        await conn.execute(bootstrap_sql(authenticator_password))
