"""The listener: Realtime hints and a timer make one dispatcher claim work for up to N messages at once.

The database is the queue. A hint (a new-row event, a (re)subscription, the sweep timer) only makes the
dispatcher claim, as many messages as there are free slots; it claims again while a claim says there was
more, so a missed event costs at most one sweep interval. A claim answers every hint that came before it
was sent, so hints for messages it took (they arrive after the claim, a Realtime hop behind the commit)
start no claim of their own. Deliveries run in their own loops, so a slow endpoint never holds up triage.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections import OrderedDict
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from ..core.backoff import Backoff
from ..core.categories import CategoryRefresher
from ..core.delivery import DeliveryService
from ..core.models import ClaimedMessage
from ..core.ports import Feed, WorkQueue
from ..core.triage import TriageService
from ..errors import StoreError

logger = logging.getLogger(__name__)


FIRST_BACKOFF_SECONDS = 0.2  # after a failed claim or delivery round; doubling up to the sweep interval
QUIET_MARGIN = 0.05  # after a burst window: the hint arrives a moment after the row's created_at
EXPECTED_HINTS = 4096  # ids claimed before their new-row hint arrived, remembered until it does
FeedFactory = Callable[[Callable[[str], None], Callable[[], None]], Feed]


@dataclass(frozen=True)
class ListenerPolicy:
    concurrency: int = 4
    lease_seconds: float = 60.0
    sweep_interval: float = 5.0
    max_attempts: int = 3
    delivery_poll: float = 1.0
    shutdown_grace: float = 8.0
    burst_window: float = 0.0  # the longest quiet window (s): claim again once it has passed after a message


def worker_id() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class _Expected:
    """Ids whose new-row hint is still to come (bounded: a hint Realtime never sends is forgotten in time)."""

    def __init__(self, size: int) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def add(self, item: str) -> None:
        self._ids[item] = None
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)

    def take(self, item: str) -> bool:
        """True once for an expected id: its hint has come."""
        return self._ids.pop(item, False) is None


class Listener:
    def __init__(
        self,
        store: WorkQueue,
        triage: TriageService,
        delivery: DeliveryService,
        feed_factory: FeedFactory,
        policy: ListenerPolicy,
        worker: str | None = None,
        categories: CategoryRefresher | None = None,
    ) -> None:
        self.worker = worker or worker_id()
        self._store = store
        self._triage = triage
        self._delivery = delivery
        self._feed_factory = feed_factory
        self._policy = policy
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._owed = False  # something may be claimable: a hint, the sweep, a passed window, a claim that said "more"
        self._hinted: set[str] = set()  # ids hinted since the last claim was sent
        self._claim_on_its_way = False
        self._expected = _Expected(EXPECTED_HINTS)
        self._handlers: set[asyncio.Task[None]] = set()
        self._deliveries_due = asyncio.Event()
        delivery.on_slot_free = self._deliveries_due.set  # a reply that found no slot goes out as soon as one frees
        self._inflight: dict[str, ClaimedMessage] = {}
        self._categories = categories
        self._last_hint = 0.0
        self._quiet_timer: asyncio.TimerHandle | None = None

    @property
    def running(self) -> bool:
        return not self._stopping.is_set()

    def stop(self) -> None:
        """Stop taking work (safe to call from a signal handler)."""
        self._stopping.set()

    async def run(self) -> None:
        feed = self._feed_factory(self._hint, self._sweep)
        if self._categories is not None:
            await self._categories.refresh()  # before the first claim: the model sees the business's list
        subscribed = await feed.start()
        logger.info(
            "listener %s: %d consumers, realtime %s, sweep every %.1fs",
            self.worker, self._policy.concurrency, "subscribed" if subscribed else "not confirmed",
            self._policy.sweep_interval,
        )  # fmt: skip
        self._sweep()
        dispatcher = asyncio.create_task(self._dispatch())
        helpers = [asyncio.create_task(self._sweeper()), asyncio.create_task(self._deliver())]
        try:
            await self._stopping.wait()
        finally:
            await self._shutdown(dispatcher, helpers)
            await feed.stop()

    def _look(self) -> None:
        self._owed = True
        self._wake.set()

    def _hint(self, message_id: str) -> None:
        """A message to claim: look now, and again once its burst window has passed (a claim leaves a
        conversation alone until it has been quiet that long). One timer serves every hint."""
        if self._expected.take(message_id):
            return  # a claim of ours took it before its hint arrived
        self._hinted.add(message_id)
        if not self._claim_on_its_way:  # else the claim on its way may take it: decided when it answers
            self._look()
        if self._policy.burst_window <= 0:
            return
        loop = asyncio.get_running_loop()
        self._last_hint = loop.time()
        if self._quiet_timer is None:
            self._quiet_timer = loop.call_later(self._policy.burst_window + QUIET_MARGIN, self._quiet)

    def _quiet(self) -> None:
        self._quiet_timer = None
        self._look()
        loop = asyncio.get_running_loop()
        due = self._last_hint + self._policy.burst_window + QUIET_MARGIN
        if due > loop.time() and not self._stopping.is_set():  # hints came meanwhile: their windows end later
            self._quiet_timer = loop.call_at(due, self._quiet)

    def _sweep(self) -> None:
        self._look()
        self._deliveries_due.set()

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self._policy.sweep_interval)
            self._sweep()
            if self._categories is not None and self._categories.stale():
                self._categories.request()  # in case a change event was missed

    async def _dispatch(self) -> None:
        """Claim for the free slots while something may be claimable; each claimed message gets a task."""
        backoff = Backoff(FIRST_BACKOFF_SECONDS, self._policy.sweep_interval)
        while not self._stopping.is_set():
            free = self._policy.concurrency - len(self._handlers)
            if not self._owed or free <= 0:
                self._wake.clear()
                await self._wake.wait()
                continue
            self._owed = False
            asked, self._hinted = self._hinted, set()
            self._claim_on_its_way = True
            try:
                claimed = await self._store.claim(
                    self.worker, free, self._policy.lease_seconds, self._policy.max_attempts
                )
            except Exception as exc:
                self._claim_on_its_way = False
                self._hinted |= asked
                self._owed = True  # try again, even if no new hint comes
                pause = backoff.next()
                if isinstance(exc, StoreError):
                    logger.warning("listener: claim failed (%s); backing off %.1fs", exc.message, pause)
                else:
                    logger.exception("listener: claim failed unexpectedly; backing off %.1fs", pause)
                await asyncio.sleep(pause)
                continue
            self._claim_on_its_way = False
            backoff.reset()
            for message in claimed:
                for taken in (message.id, *(item.id for item in message.burst)):
                    if taken in self._hinted:
                        self._hinted.discard(taken)  # its hint came while the claim was on its way
                    elif taken not in asked:
                        self._expected.add(taken)  # its hint is still to come: it starts no claim
                self._start(message)
            if self._hinted or (claimed and claimed[-1].more):
                self._owed = True  # hints the claim did not answer, or it left some behind

    def _start(self, message: ClaimedMessage) -> None:
        self._inflight[message.id] = message  # before the task runs: a cancelled task never starts its body
        task = asyncio.create_task(self._handle(message))
        self._handlers.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._handlers.discard(task)
        self._wake.set()  # a slot is free

    async def _handle(self, message: ClaimedMessage) -> None:
        # A slot for the reply: the completion leases it to this worker, so no delivery round needs to claim it.
        slot = self._delivery.reserve(self.worker)
        try:
            await self._triage.process(message, self.worker, slot)
        except StoreError as exc:
            logger.warning("message %s: store failed (%s); its lease will expire and it is retried", message.id, exc)
        except Exception:
            logger.exception("message %s: unexpected error; its lease will expire and it is retried", message.id)
        finally:
            if slot is not None:
                slot.release()  # a no-op once the reply went out through it
        # Not reached when cancelled at shutdown: the message stays in flight and its lease is released.
        self._inflight.pop(message.id, None)
        if slot is None:
            self._deliveries_due.set()  # no slot was free: a round claims the reply once one is

    async def _deliver(self) -> None:
        """Delivery rounds: when poked, and every ``delivery_poll`` for retries coming due and operators' replies.
        One loop is enough: a round only claims, and each attempt runs as a task of its own."""
        backoff = Backoff(FIRST_BACKOFF_SECONDS, self._policy.sweep_interval)
        while not self._stopping.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(self._deliveries_due.wait(), self._policy.delivery_poll)
            self._deliveries_due.clear()
            if self._stopping.is_set():
                return
            try:
                await self._delivery.start_rounds(self.worker)
                backoff.reset()
            except StoreError as exc:
                logger.warning("listener: delivery bookkeeping failed (%s); backing off", exc.message)
                await asyncio.sleep(backoff.next())
            except Exception:
                logger.exception("listener: delivery loop error")
                await asyncio.sleep(backoff.next())

    async def _shutdown(self, dispatcher: asyncio.Task[None], helpers: list[asyncio.Task[None]]) -> None:
        logger.info("listener %s: stopping; %d message(s) in flight", self.worker, len(self._inflight))
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
        if self._categories is not None:
            await self._categories.aclose()
        self._wake.set()  # the dispatcher stops after the claim on its way, if any (what it took is started)
        for task in helpers:
            task.cancel()
        # Deliveries already on the wire get the same grace as the messages being answered, side by side.
        deliveries = asyncio.create_task(self._delivery.aclose(within=self._policy.shutdown_grace))
        deadline = asyncio.get_running_loop().time() + self._policy.shutdown_grace
        await asyncio.wait([dispatcher], timeout=self._policy.shutdown_grace)
        dispatcher.cancel()
        remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        handlers = list(self._handlers)
        if handlers:
            _, unfinished = await asyncio.wait(handlers, timeout=remaining)
            for task in unfinished:
                task.cancel()
        await asyncio.gather(dispatcher, *handlers, *helpers, return_exceptions=True)
        await deliveries
        for message_id in list(self._inflight):
            with suppress(StoreError):
                await self._store.release(message_id, self.worker)
                logger.info("message %s: lease released for another worker", message_id)
        self._inflight.clear()
