"""The API's reply waiter against the local stack's Realtime: it leaves Realtime once nobody has waited for
a while, and a later wait brings it back, settling a message that finished before the subscription was live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from neiromatrius import composition
from neiromatrius.adapters.supabase_realtime import RealtimeReplyWaiter
from neiromatrius.adapters.supabase_store import SupabaseMessageStore
from neiromatrius.core.models import IncomingMessage
from tests.support.waiting import eventually

pytestmark = pytest.mark.usefixtures("worker_queue_clear")


@pytest.fixture
async def waiter(resources: composition.Resources, store: SupabaseMessageStore) -> AsyncIterator[RealtimeReplyWaiter]:
    async def is_final(message_id: str) -> bool:
        return (await store.get(message_id)).state.terminal

    waiter = RealtimeReplyWaiter(resources.supabase, is_final=is_final, linger=0.3)
    yield waiter
    await waiter.stop()


async def finish(db: asyncpg.Connection, message_id: str) -> None:
    await db.execute(
        "update public.messages set state = 'failed', last_error = 'test', finished_at = now() where id = $1",
        message_id,
    )


async def test_an_idle_waiter_leaves_realtime_and_a_wait_brings_it_back(
    waiter: RealtimeReplyWaiter,
    resources: composition.Resources,
    store: SupabaseMessageStore,
    incoming: Callable[..., IncomingMessage],
    db: asyncpg.Connection,
) -> None:
    assert await waiter.start(within=10)
    await eventually(lambda: not resources.supabase.realtime.channels, 10)  # left after the linger
    assert not waiter.live

    # Finished before anyone waits, while the waiter holds no subscription: going live settles it.
    early = await store.intake(incoming(chat_id="early"))
    await finish(db, early.id)
    assert await waiter.wait(early.id, within=20) is True

    # Finished while a request waits on the subscription that wait brought back: its event settles it.
    later = await store.intake(incoming(chat_id="later"))
    waiting = asyncio.create_task(waiter.wait(later.id, within=20))
    await eventually(lambda: waiter.live, 10)
    await finish(db, later.id)
    assert await waiting is True

    await eventually(lambda: not resources.supabase.realtime.channels, 10)  # and leaves again


async def test_a_waiter_stays_subscribed_while_a_request_waits(
    waiter: RealtimeReplyWaiter,
    resources: composition.Resources,
    store: SupabaseMessageStore,
    incoming: Callable[..., IncomingMessage],
) -> None:
    assert await waiter.start(within=10)
    pending = await store.intake(incoming(chat_id="pending"))
    waiting = asyncio.create_task(waiter.wait(pending.id, within=1.5))
    await asyncio.sleep(1.0)  # longer than the linger
    assert waiter.live
    assert await waiting is False  # never finished: the wait ran out
    await eventually(lambda: not resources.supabase.realtime.channels, 10)
