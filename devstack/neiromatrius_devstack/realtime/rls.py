"""Row-level security per subscriber, the way Realtime's ``apply_rls`` does it.

A changed row of an RLS table reaches a subscriber only if the subscriber can see its *current*
version: ``exists(select 1 from t where pk = …)`` under their role and JWT claims, in a short
transaction on the non-superuser ``authenticator`` pool (transaction-local settings only: a
session-level role would survive the pool's reset, and ``request.jwt.claims`` must always be set).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import asyncpg

from .catalog import TableInfo, quote_ident

log = logging.getLogger(__name__)


# The streamed commit can be ahead of visibility: PostgreSQL flushes a commit's WAL (so a walsender may
# send it) a moment before it ends the transaction in the ProcArray (so new snapshots see it). An RLS
# check made in that moment finds the row missing and drops the event. So the dispatcher waits for the
# transaction to be visible before its first check. This asks whether a 32-bit xid is still in progress
# for a snapshot taken now (its 64-bit form is rebuilt from the snapshot's xmax, wraparound included).
_IN_PROGRESS = """
with s as (select pg_current_snapshot() as snap),
     x as (select snap, pg_snapshot_xmax(snap)::text::numeric as xmax from s),
     c as (select snap, xmax, trunc(xmax / 4294967296) * 4294967296 + $1::bigint as candidate from x),
     d as (select snap,
                  case when candidate > xmax + 2147483648 then candidate - 4294967296 else candidate end as full_xid
           from c)
select full_xid >= 0 and not pg_visible_in_snapshot(full_xid::text::xid8, snap) from d
"""
VISIBILITY_BOUND = 5.0  # seconds; the window is normally microseconds
_POLL = 0.001


async def wait_until_visible(pool: asyncpg.Pool, xid: int) -> bool:
    """Wait (bounded) until transaction ``xid`` is visible to new snapshots; whether it had not been yet."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + VISIBILITY_BOUND
    waited = False
    try:
        async with pool.acquire() as conn:
            while await conn.fetchval(_IN_PROGRESS, xid):
                if loop.time() > deadline:
                    log.warning("transaction %s still not visible after %.0f s", xid, VISIBILITY_BOUND)
                    break
                waited = True
                await asyncio.sleep(_POLL)  # no notification exists for "a transaction became visible"
    except asyncpg.PostgresError as exc:  # the refusals stand as they are
        log.info("could not tell whether transaction %s is visible: %s", xid, exc)
    return waited


def role_of(claims: Mapping[str, Any]) -> str:
    role = claims.get("role")
    return role if isinstance(role, str) and role else "anon"


async def row_visible(
    pool: asyncpg.Pool, table: TableInfo, key: Mapping[str, str | None], claims: Mapping[str, Any]
) -> bool:
    """Whether the row with primary key ``key`` is visible to a subscriber with ``claims`` now."""
    if any(key.get(name) is None for name in table.primary_key):
        return False
    where = " and ".join(
        f"{quote_ident(name)} = ${i}::text::{column.sql_type}"
        for i, name in enumerate(table.primary_key, start=1)
        if (column := table.column(name)) is not None
    )
    sql = f"select exists(select 1 from {table.qualified} where {where})"
    role, claims_json = role_of(claims), json.dumps(dict(claims))
    if "\x00" in role:  # Postgres takes no NUL in a setting, as it refused it as a parameter
        return False
    # BEGIN and the settings in one round trip (constants, as escaped literals), then the check.
    begin = f"BEGIN; SELECT set_config('role', {_literal(role)}, true), "
    begin += f"set_config('request.jwt.claims', {_literal(claims_json)}, true)"
    try:
        async with pool.acquire() as conn:
            try:
                await conn.execute(begin)
                visible = bool(await conn.fetchval(sql, *(key[name] for name in table.primary_key)))
                await conn.execute("COMMIT")
            except BaseException:
                if not conn.is_closed() and conn.is_in_transaction():
                    await conn.execute("ROLLBACK")
                raise
            return visible
    except asyncpg.PostgresError as exc:
        # An unknown role, a policy that raises, a revoked grant: the subscriber sees nothing.
        log.info("RLS check on %s failed for role %s: %s", table.qualified, role_of(claims), exc)
        return False


def _literal(text: str) -> str:
    """A string constant that reads the same whatever ``standard_conforming_strings`` says."""
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
