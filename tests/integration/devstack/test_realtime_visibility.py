"""The change feed can deliver a commit a moment before other sessions see it; RLS checks wait for that
moment (``rls.wait_until_visible``) instead of refusing a row that is about to be visible."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from neiromatrius_devstack.realtime.rls import wait_until_visible
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
