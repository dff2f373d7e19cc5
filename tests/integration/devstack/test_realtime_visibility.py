"""The change feed can deliver a commit a moment before other sessions see it; RLS checks wait for that
moment (``rls.wait_until_visible``) instead of refusing a row that is about to be visible."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from neiromatrius_devstack.realtime.catalog import ColumnInfo, TableInfo
from neiromatrius_devstack.realtime.rls import row_visible, wait_until_visible
from tests.conftest import Stack
from tests.support.waiting import eventually

pytestmark = pytest.mark.local_only  # the local stack's own Realtime internals

XID = "select (pg_current_xact_id()::text::bigint % 4294967296)::bigint"  # 32-bit, as pgoutput sends it


@pytest.fixture
async def pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=2)
    yield created
    await created.close()


async def test_it_waits_while_the_transaction_is_in_progress_and_not_after(
    pool: asyncpg.Pool, db: asyncpg.Connection, stack: Stack
) -> None:
    writer = await asyncpg.connect(stack.database_url)
    try:
        transaction = writer.transaction()
        await transaction.start()
        xid = await writer.fetchval(XID)
        waiting = asyncio.create_task(wait_until_visible(pool, xid))

        async def polled() -> bool:  # the waiter has asked at least once while the transaction is open
            query = "select count(*) from pg_stat_activity where query like '%pg_visible_in_snapshot%' and pid <> $1"
            return bool(await db.fetchval(query, await db.fetchval("select pg_backend_pid()")))

        await eventually(polled, bound=10)
        assert not waiting.done()
        await transaction.commit()
        assert await asyncio.wait_for(waiting, 10) is True  # it waited, and returned once the commit was visible
    finally:
        await writer.close()
    assert await wait_until_visible(pool, xid) is False  # committed and visible: no wait at all


async def test_xids_long_finished_are_not_waited_for(pool: asyncpg.Pool) -> None:
    current = await pool.fetchval(XID)
    for behind in (1, 1_000_000_000):  # the latter, on a young database, from "before" the counter started
        assert await wait_until_visible(pool, (current - behind) % 4_294_967_296) is False


async def test_the_rls_check_reads_any_claims_and_refuses_unknown_roles(
    pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    """The role and claims travel as escaped literals: quotes, backslashes and non-ASCII text read back as sent."""
    owner = uuid.uuid4()
    row_id = await db.fetchval("insert into rt_owned (owner, body) values ($1, 'x') returning id", owner)
    columns = (
        ColumnInfo("id", "int8", "bigint"),
        ColumnInfo("owner", "uuid", "uuid"),
        ColumnInfo("body", "text", "text"),
    )
    table = TableInfo("public", "rt_owned", columns, ("id",), rls=True)
    key = {"id": str(row_id)}
    claims = {"role": "authenticated", "sub": str(owner), "email": "o'neil\\'\\\\ёж@example.com"}
    assert await row_visible(pool, table, key, claims)
    assert not await row_visible(pool, table, key, {**claims, "sub": str(uuid.uuid4())})
    for role in ("no_such_role", "it's", "nul\x00"):
        assert not await row_visible(pool, table, key, {**claims, "role": role})
    for _ in range(3):  # a refused check leaves no connection inside a transaction
        assert await row_visible(pool, table, key, claims)
