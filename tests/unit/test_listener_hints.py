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
        self.asked: list[tuple[int, int]] = []  # (limit, messages claimed) of each claim
        self.gate: asyncio.Event | None = None  # when set: claims read the queue, then wait for it to answer
        self.waiting = asyncio.Event()  # a claim is waiting at the gate
        self.fail: Exception | None = None  # the next claim raises it

    async def claim(self, worker: str, limit: int, lease_seconds: float, max_attempts: int) -> list[ClaimedMessage]:
        self.claims += 1
        if self.fail is not None:
            failure, self.fail = self.fail, None
            raise failure
        claimed = await super().claim(worker, limit, lease_seconds, max_attempts)
        self.asked.append((limit, len(claimed)))
        if self.gate is not None:
            self.waiting.set()
            await self.gate.wait()
        return claimed


@asynccontextmanager
async def listening(queue: CountingQueue, burst_window: float, concurrency: int = 1) -> AsyncIterator[FakeFeed]:
    feeds: list[FakeFeed] = []

    def feed(on_message: Callable[[str], None], on_ready: Callable[[], None]) -> FakeFeed:
        feeds.append(FakeFeed(on_message, on_ready, subscribed=False))
        return feeds[-1]

    guard = ReplyGuard(categories=("other",), system_prompt="Instructions", canary=CANARY)
    triage = TriageService(queue, FakeResponder(UnusableAnswer("unused")), TriagePolicy(), guard)
    delivery = DeliveryService(FakeDeliveryLog(), FakeDeliverer({}), schedule=(1,), lease_seconds=5, batch_limit=1)
    # No sweep within the test: every claim comes from a hint or the quiet timer.
    policy = ListenerPolicy(concurrency=concurrency, sweep_interval=600, burst_window=burst_window)
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


async def test_one_claim_takes_as_many_messages_as_there_are_free_slots() -> None:
    queue = CountingQueue()
    async with listening(queue, burst_window=0, concurrency=3) as feed:
        queue.queued = [message(f"m{i}") for i in range(5)]
        feed.hint("m0")
        await eventually(lambda: len(queue.finished) == 5, 5)
        assert queue.asked[0] == (3, 0)  # the start-up sweep, all slots free
        assert queue.asked[1] == (3, 3)  # the hint: three at once, and the claim said there was more
        assert sum(taken for _, taken in queue.asked) == 5
        assert all(limit <= 3 for limit, _ in queue.asked)


async def test_hints_for_messages_a_claim_already_took_start_no_claim() -> None:
    queue = CountingQueue()
    async with listening(queue, burst_window=0, concurrency=3) as feed:
        queue.queued = [message(f"m{i}") for i in range(3)]
        feed.hint("m0")  # the claim takes all three; the other two hints arrive after it, as Realtime's do
        await eventually(lambda: len(queue.finished) == 3, 5)
        feed.hint("m1")
        feed.hint("m2")
        await asyncio.sleep(0.3)
        assert queue.claims == 2  # the start-up sweep and the first hint's

        # Later hints for the same messages (pending again: handed back, a lease released) are claimed for.
        feed.hint("m0")
        await eventually(lambda: queue.claims == 3, 5)
        feed.hint("m1")
        await eventually(lambda: queue.claims == 4, 5)


async def test_a_hint_that_came_during_a_claim_is_claimed_for_unless_that_claim_took_its_message() -> None:
    queue = CountingQueue()
    async with listening(queue, burst_window=0, concurrency=3) as feed:
        queue.gate = asyncio.Event()
        queue.queued = [message("m0"), message("m1")]
        feed.hint("m0")
        await queue.waiting.wait()
        feed.hint("m1")  # taken by the claim on its way
        await asyncio.sleep(0.1)
        assert queue.claims == 2  # hints during a claim wait for its answer
        queue.gate.set()
        await eventually(lambda: len(queue.finished) == 2, 5)
        await asyncio.sleep(0.3)
        assert queue.claims == 2

        queue.gate = asyncio.Event()
        queue.waiting.clear()
        queue.queued = [message("m2")]
        feed.hint("m2")
        await queue.waiting.wait()
        queue.queued.append(message("m3"))  # after the claim read the queue: it cannot answer this hint
        feed.hint("m3")
        queue.gate.set()
        await eventually(lambda: len(queue.finished) == 4, 5)
        assert queue.claims == 4


async def test_a_claim_that_fails_unexpectedly_is_tried_again_and_claiming_goes_on() -> None:
    queue = CountingQueue()
    async with listening(queue, burst_window=0) as feed:
        queue.queued = [message("m0")]
        queue.fail = RuntimeError("a bug in the store adapter")
        feed.hint("m0")
        await eventually(lambda: len(queue.finished) == 1, 5)  # after the backoff, no new hint needed
        queue.queued = [message("m1")]
        feed.hint("m1")
        await eventually(lambda: len(queue.finished) == 2, 5)
