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


# The decoded transaction's status, its 32-bit xid widened with the current epoch (taken from the
# snapshot's xmax, one epoch back if that would put it in the future).
_XACT_STATUS = """
select pg_catalog.pg_xact_status(
  (case when e.xid > e.xmax then e.xid - 4294967296 else e.xid end)::text::xid8)
from (select x.xmax, ((x.xmax >> 32) << 32) + $1::bigint as xid
      from (select pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text::bigint as xmax) x) e
"""
SETTLE_BOUND = 5.0


async def wait_until_visible(pool: asyncpg.Pool, xid: int) -> None:
    """Wait (bounded) until transaction ``xid`` is visible to new snapshots.

    A commit record reaches logical decoding once it is flushed, a moment before the committing
    backend leaves the proc array; until then a fresh snapshot still sees the transaction as running,
    so an RLS check by primary key would not find the row it has just inserted.
    """
    if not xid:
        return
    deadline = asyncio.get_running_loop().time() + SETTLE_BOUND
    async with pool.acquire() as conn:
        while await conn.fetchval(_XACT_STATUS, xid) == "in progress":
            if asyncio.get_running_loop().time() > deadline:
                log.warning("transaction %s still in progress after %.0fs; checking RLS anyway", xid, SETTLE_BOUND)
                return
            await asyncio.sleep(0.001)  # the committing backend is between WAL flush and proc-array exit


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
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
                role_of(claims),
                json.dumps(dict(claims)),
            )
            return bool(await conn.fetchval(sql, *(key[name] for name in table.primary_key)))
    except asyncpg.PostgresError as exc:
        # An unknown role, a policy that raises, a revoked grant: the subscriber sees nothing.
        log.info("RLS check on %s failed for role %s: %s", table.qualified, role_of(claims), exc)
        return False
