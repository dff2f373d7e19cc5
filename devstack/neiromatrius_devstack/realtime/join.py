"""Checking a join's ``postgres_changes`` bindings against the database, as Realtime's subscription
insert does: the table must be in the publication, filter columns must exist and values must cast.

A subscription receives every transaction committing after the WAL position noted once it is
registered, whatever the feed's lag; while that position is being read it receives whatever the
dispatcher reaches (as Realtime delivers any change it polls once the subscription row exists).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from .catalog import ColumnInfo, Connection, TableInfo
from .render import validate_filter
from .subscriptions import Binding, SubscriptionError, parse_binding

_PUBLISHED = """
select p.schemaname, p.tablename, c.oid, c.relrowsecurity
from pg_publication_tables p
join pg_namespace n on n.nspname = p.schemaname
join pg_class c on c.relnamespace = n.oid and c.relname = p.tablename
where p.pubname = $1
"""
_COLUMNS = """
select a.attname, t.typname, format_type(a.atttypid, a.atttypmod) as sql_type
from pg_attribute a join pg_type t on t.oid = a.atttypid
where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped order by a.attnum
"""
_POSITION = "select (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint"


@dataclass(frozen=True)
class Checked:
    bindings: tuple[Binding, ...]  # empty when refused
    error: str | None  # Realtime's system error text; when set, nothing is subscribed


async def wal_position(pool: asyncpg.Pool) -> int:
    """The WAL insert position now: every transaction committing later has its commit record past it."""
    return int(await pool.fetchval(_POSITION))


async def check(pool: asyncpg.Pool, publication: str, params: list[Any]) -> Checked:
    try:
        bindings = tuple(parse_binding(item) for item in params if item is not None)
    except SubscriptionError as exc:
        return Checked((), str(exc))
    if not bindings:
        return Checked((), None)
    async with pool.acquire() as conn:
        published = await conn.fetch(_PUBLISHED, publication)
        for binding in bindings:
            error = await _check_binding(conn, binding, published)
            if error is not None:
                return Checked((), error)
    return Checked(bindings, None)


async def _check_binding(conn: Connection, binding: Binding, published: list[asyncpg.Record]) -> str | None:
    tables = [
        row
        for row in published
        if binding.schema in ("*", row["schemaname"]) and binding.table in ("*", row["tablename"])
    ]
    if not tables:
        return (
            "Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the given "
            f"connect parameters: [{binding.describe()}]"
        )
    for row in tables:
        columns = await conn.fetch(_COLUMNS, row["oid"])
        table = TableInfo(
            row["schemaname"],
            row["tablename"],
            tuple(ColumnInfo(c["attname"], c["typname"], c["sql_type"]) for c in columns),
            (),
            bool(row["relrowsecurity"]),
        )
        for f in binding.filters:
            problem = await validate_filter(conn, table, f)
            if problem is not None:
                return (
                    "Unable to subscribe to changes with given parameters. An exception happened so please check "
                    f"your connect parameters: [{binding.describe()}]. Exception: ERROR P0001 (raise_exception) "
                    f"{problem}"
                )
    return None
