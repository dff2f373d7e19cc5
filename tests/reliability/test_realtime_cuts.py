"""The listener behind a TCP proxy (its REST calls and its Realtime websocket both cross it), the API and
the database beside it: Realtime cut while messages arrive, and a reconnect that rejoins without the
``postgres_changes`` events (realtime-py #213). Either way the sweep answers every message within
its interval and a bound, and the oldest-pending gauge falls back to 0."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from neiromatrius_devstack.process import DevstackProcess
from tests.conftest import MakeReceiver, Stack
from tests.e2e.conftest import ServiceProcess
from tests.reliability.outage_support import (
    OLDEST_PENDING,
    Services,
    accepted,
    all_finished,
    caught_up,
    fetch,
    gauges,
    private_stack,
    states,
)
from tests.reliability.tcp_proxy import TcpProxy
from tests.support.http_receiver import Receiver
from tests.support.waiting import eventually

pytestmark = pytest.mark.local_only

SWEEP_INTERVAL = 2.0
BOUND = 10.0  # processing a batch on a busy machine, on top of one sweep interval
MESSAGES = 20
REALTIME_PY_GIVES_UP = 16.0  # AsyncRealtimeClient(max_retries=5, initial_backoff=1.0): attempts 1, 2, 4, 8 s apart


@pytest.fixture(scope="module")
def cut_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, DevstackProcess]]:
    """A stack of this module's own, so the oldest-pending gauge (a whole-queue figure) is ours alone."""
    with private_stack(tmp_path_factory.mktemp("realtime-cuts") / "data") as started:
        yield started


@dataclasses.dataclass(frozen=True)
class Rig:
    stack: Stack
    proxy: TcpProxy
    api_url: str
    metrics_url: str
    listener: ServiceProcess
    hook: Receiver
    client_id: str


@pytest.fixture
async def rig(cut_stack: tuple[Stack, DevstackProcess], tmp_path: Path, receiver: MakeReceiver) -> AsyncIterator[Rig]:
    """The API straight on the stack; a listener whose SUPABASE_URL is the proxy."""
    stack = cut_stack[0]
    proxy = TcpProxy(int(stack.url.rsplit(":", 1)[1]))
    await proxy.start()
    services = Services(tmp_path)
    try:
        api_url, _ = await services.api(stack)
        metrics_url, listener = await services.listener(
            dataclasses.replace(stack, url=proxy.url), SWEEP_INTERVAL_SECONDS=str(SWEEP_INTERVAL)
        )
        await eventually(lambda: proxy.counts.subscriptions >= 1, BOUND)
        yield Rig(stack, proxy, api_url, metrics_url, listener, await receiver(), f"cuts-{uuid.uuid4().hex[:10]}")
    finally:
        await asyncio.to_thread(services.stop)
        await proxy.close()


async def events_reach_the_listener(rig: Rig, http: httpx.AsyncClient) -> None:
    """Before any fault: a message is answered and its INSERT event crosses the proxy to the listener."""
    [first] = await accepted(http, rig.api_url, rig.client_id, rig.hook.url(), 1)
    await eventually(lambda: all_finished(rig.stack, [first]), BOUND)
    # The sweep may answer it first; the event still has to cross (a loaded machine decodes the WAL late).
    await eventually(lambda: rig.proxy.counts.events_forwarded >= 1, 3 * BOUND)


async def test_a_realtime_cut_while_messages_arrive_is_caught_up_by_the_sweep_after_restore(rig: Rig) -> None:
    proxy = rig.proxy
    async with httpx.AsyncClient(timeout=30) as http:
        await events_reach_the_listener(rig, http)

        subscribed = proxy.counts.subscriptions
        proxy.refusing = True
        proxy.cut()
        ids = await accepted(http, rig.api_url, rig.client_id, rig.hook.url(), MESSAGES)
        # The listener notices: it tries to reconnect its websocket (twice: realtime-py backs off) and to
        # claim, and is refused every time.
        await eventually(lambda: proxy.counts.refused_websocket >= 2 and proxy.counts.refused_http >= 1, BOUND)
        held_back = await states(rig.stack, ids)
        proxy.refusing = False

        # Caught up within a sweep (and a busy machine's batch): the bounded wait fails the test otherwise.
        await eventually(lambda: all_finished(rig.stack, ids), SWEEP_INTERVAL + BOUND, every=0.1)
        await eventually(lambda: proxy.counts.subscriptions > subscribed, BOUND)  # and it subscribes again
        scrape = await eventually(lambda: caught_up(http, rig.metrics_url), BOUND, every=0.2)

    assert set(held_back.values()) == {"pending"}, held_back  # nothing got through while cut
    assert set((await states(rig.stack, ids)).values()) == {"answered"}
    await assert_answered_once(rig.stack, ids)
    assert scrape[OLDEST_PENDING] == 0
    assert rig.listener.process.poll() is None, rig.listener.output()


async def test_a_cut_longer_than_realtime_pys_retries_ends_with_the_listener_subscribed_again(rig: Rig) -> None:
    proxy = rig.proxy
    async with httpx.AsyncClient(timeout=30) as http:
        await events_reach_the_listener(rig, http)

        subscribed = proxy.counts.subscriptions
        proxy.refusing = True
        proxy.cut()
        cut_at = time.monotonic()
        # realtime-py tries 5 times over about 15 s, then gives up for good: refuse for longer than that.
        await eventually(lambda: time.monotonic() - cut_at > REALTIME_PY_GIVES_UP, REALTIME_PY_GIVES_UP + BOUND)
        ids = await accepted(http, rig.api_url, rig.client_id, rig.hook.url(), MESSAGES)
        proxy.refusing = False

        await eventually(lambda: proxy.counts.subscriptions > subscribed, SWEEP_INTERVAL + BOUND)
        await eventually(lambda: all_finished(rig.stack, ids), SWEEP_INTERVAL + BOUND, every=0.1)
        events = proxy.counts.events_forwarded
        [after] = await accepted(http, rig.api_url, rig.client_id, rig.hook.url(), 1)
        await eventually(lambda: all_finished(rig.stack, [after]), SWEEP_INTERVAL + BOUND, every=0.1)
        await eventually(lambda: proxy.counts.events_forwarded > events, BOUND)  # events flow to it again
        scrape = await eventually(lambda: caught_up(http, rig.metrics_url), BOUND, every=0.2)

    await assert_answered_once(rig.stack, [*ids, after])
    assert scrape[OLDEST_PENDING] == 0
    assert rig.listener.process.poll() is None, rig.listener.output()


async def test_a_rejoin_without_events_still_gets_every_message_answered_by_the_periodic_sweep(rig: Rig) -> None:
    proxy = rig.proxy
    async with httpx.AsyncClient(timeout=30) as http:
        await events_reach_the_listener(rig, http)

        proxy.drop_changes = True  # the socket and the channel come back, the postgres_changes never do
        forwarded = proxy.counts.events_forwarded
        subscribed = proxy.counts.subscriptions
        proxy.cut()
        # The listener reconnects and Realtime confirms the subscription: it believes all is well.
        await eventually(lambda: proxy.counts.subscriptions > subscribed, BOUND)
        dropped = proxy.counts.events_dropped

        ids = await accepted(http, rig.api_url, rig.client_id, rig.hook.url(), MESSAGES)
        oldest: list[float] = []

        async def answered() -> bool:
            oldest.append((await gauges(http, rig.metrics_url))[OLDEST_PENDING])
            return await all_finished(rig.stack, ids)

        await eventually(answered, SWEEP_INTERVAL + BOUND, every=0.2)
        scrape = await eventually(lambda: caught_up(http, rig.metrics_url), BOUND, every=0.2)

    # The server did send an event for each message; none reached the listener: the sweep found them.
    assert proxy.counts.events_dropped - dropped >= MESSAGES
    assert proxy.counts.events_forwarded == forwarded
    # No message waited longer than a sweep (and a busy machine's batch), as the database itself counts it.
    assert max(oldest) < SWEEP_INTERVAL + BOUND, oldest
    assert set((await states(rig.stack, ids)).values()) == {"answered"}
    await assert_answered_once(rig.stack, ids)
    assert scrape[OLDEST_PENDING] == 0
    assert rig.listener.process.poll() is None, rig.listener.output()


async def assert_answered_once(stack: Stack, ids: list[str]) -> None:
    rows = await fetch(
        stack,
        "select m.id, (select count(*) from replies r where r.message_id = m.id) as replies,"
        " (select count(*) from classifications c where c.message_id = m.id) as classifications"
        " from messages m where m.id = any($1::uuid[])",
        [uuid.UUID(i) for i in ids],
    )
    assert len(rows) == len(ids)
    assert {(row["replies"], row["classifications"]) for row in rows} == {(1, 1)}
