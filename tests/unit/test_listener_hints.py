"""The listener's hints: a new message is looked for at once, and again once its burst window has passed
(the claim leaves a conversation alone until it has been quiet that long), with one timer for all hints."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from neiromatrius.core.delivery import DeliveryService
from neiromatrius.core.guard import ReplyGuard
from neiromatrius.core.models import ClaimedMessage
from neiromatrius.core.triage import TriagePolicy, TriageService
from neiromatrius.errors import UnusableAnswer
from neiromatrius.listener.worker import Listener, ListenerPolicy
from tests.support.fakes import FakeDeliverer, FakeDeliveryLog, FakeFeed, FakeResponder, FakeWorkQueue
from tests.support.waiting import eventually

CANARY = "nm-canary-0123456789abcdef0123"


class CountingQueue(FakeWorkQueue):
    def __init__(self) -> None:
        super().__init__()
        self.claims = 0

    async def claim(self, worker: str, limit: int, lease_seconds: float, max_attempts: int) -> list[ClaimedMessage]:
        self.claims += 1
        return await super().claim(worker, limit, lease_seconds, max_attempts)


@asynccontextmanager
async def listening(queue: CountingQueue, burst_window: float) -> AsyncIterator[FakeFeed]:
    feeds: list[FakeFeed] = []

    def feed(on_message: Callable[[str], None], on_ready: Callable[[], None]) -> FakeFeed:
        feeds.append(FakeFeed(on_message, on_ready, subscribed=False))
        return feeds[-1]

    guard = ReplyGuard(categories=("other",), system_prompt="Instructions", canary=CANARY)
    triage = TriageService(queue, FakeResponder(UnusableAnswer("unused")), TriagePolicy(), guard)
    delivery = DeliveryService(FakeDeliveryLog(), FakeDeliverer({}), schedule=(1,), lease_seconds=5, batch_limit=1)
    # One consumer and no sweep within the test: every claim comes from a hint or the quiet timer.
    policy = ListenerPolicy(concurrency=1, sweep_interval=600, delivery_runners=1, burst_window=burst_window)
    listener = Listener(queue, triage, delivery, feed, policy)
    task = asyncio.create_task(listener.run())
    await eventually(lambda: feeds and feeds[0].started and queue.claims == 1, 5)  # the start-up sweep
    try:
        yield feeds[0]
    finally:
        listener.stop()
        await asyncio.wait_for(task, 10)


async def test_a_hint_claims_at_once_and_again_when_the_window_has_passed() -> None:
    queue = CountingQueue()
    async with listening(queue, burst_window=0.2) as feed:
        feed.hint("m1")
        await eventually(lambda: queue.claims == 2, 5)  # at once
        await eventually(lambda: queue.claims == 3, 5)  # after the window


async def test_a_hint_inside_the_window_moves_the_timer_on_to_its_own_window() -> None:
    queue = CountingQueue()
    async with listening(queue, burst_window=0.3) as feed:
        feed.hint("m1")
        await eventually(lambda: queue.claims == 2, 5)
        await asyncio.sleep(0.1)
        feed.hint("m2")  # the first window still runs: one timer, fired for m1, then again for m2
        await eventually(lambda: queue.claims == 5, 5)


def message(message_id: str) -> ClaimedMessage:
    return ClaimedMessage(
        id=message_id, conversation_id=f"c-{message_id}", client_id="client", platform="test", chat_id=message_id,
        content="Hi", attempts=1, created_at=datetime(2026, 12, 4, tzinfo=UTC),
    )  # fmt: skip


async def test_a_consumer_claims_until_the_claim_says_nothing_more_was_there() -> None:
    queue = CountingQueue()
    async with listening(queue, burst_window=0) as feed:
        queue.queued = [message(f"m{i}") for i in range(3)]
        feed.hint("m0")  # one hint for three messages: the claims say there is more
        await eventually(lambda: len(queue.finished) == 3, 5)
        # Three claims for three messages: the last one said it was the last, so no fourth claim
        # went looking for nothing (the start-up sweep made the first claim of all).
        assert queue.claims == 1 + 3
