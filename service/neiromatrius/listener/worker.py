"""The listener: Realtime hints and a timer feed N consumers that claim, triage and hand replies to delivery.

The database is the queue. A hint (a new-row event, a (re)subscription, the sweep timer) only makes
an idle consumer claim; a consumer claims until a claim says it took the last one, so a missed event costs at most
one sweep interval. Deliveries run in their own loops, so a slow endpoint never holds up triage.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
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
FeedFactory = Callable[[Callable[[str], None], Callable[[], None]], Feed]


@dataclass(frozen=True)
class ListenerPolicy:
    concurrency: int = 4
    lease_seconds: float = 60.0
    sweep_interval: float = 5.0
    max_attempts: int = 3
    delivery_runners: int = 2
    delivery_poll: float = 1.0
    shutdown_grace: float = 8.0
    burst_window: float = 0.0  # the longest quiet window (s): claim again once it has passed after a message


def worker_id() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class _Hints:
    """A bounded wake-up queue: more hints than sleepers would only cause empty claims."""

    def __init__(self, limit: int) -> None:
        self._queue: asyncio.Queue[bool] = asyncio.Queue()
        self._limit = limit

    def poke(self) -> None:
        if self._queue.qsize() < self._limit:
            self._queue.put_nowait(True)

    def close(self, sleepers: int) -> None:
        for _ in range(sleepers):
            self._queue.put_nowait(False)

    async def wait(self, within: float | None = None) -> bool:
        """True to go and look for work, False to stop."""
        try:
            return await asyncio.wait_for(self._queue.get(), within)
        except TimeoutError:
            return True


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
        self._work = _Hints(policy.concurrency)
        self._deliveries = _Hints(policy.delivery_runners)
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
        consumers = [asyncio.create_task(self._consume()) for _ in range(self._policy.concurrency)]
        helpers = [asyncio.create_task(self._sweeper())]
        helpers += [asyncio.create_task(self._deliver()) for _ in range(self._policy.delivery_runners)]
        try:
            await self._stopping.wait()
        finally:
            await self._shutdown(consumers, helpers)
            await feed.stop()

    def _hint(self, _message_id: str) -> None:
        """A message to claim: look now, and again once its burst window has passed (a claim leaves a
        conversation alone until it has been quiet that long). One timer serves every hint."""
        self._work.poke()
        if self._policy.burst_window <= 0:
            return
        loop = asyncio.get_running_loop()
        self._last_hint = loop.time()
        if self._quiet_timer is None:
            self._quiet_timer = loop.call_later(self._policy.burst_window + QUIET_MARGIN, self._quiet)

    def _quiet(self) -> None:
        self._quiet_timer = None
        self._work.poke()
        loop = asyncio.get_running_loop()
        due = self._last_hint + self._policy.burst_window + QUIET_MARGIN
        if due > loop.time() and not self._stopping.is_set():  # hints came meanwhile: their windows end later
            self._quiet_timer = loop.call_at(due, self._quiet)

    def _sweep(self) -> None:
        for _ in range(self._policy.concurrency):
            self._work.poke()
        self._deliveries.poke()

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self._policy.sweep_interval)
            self._sweep()
            if self._categories is not None and self._categories.stale():
                self._categories.request()  # in case a change event was missed

    async def _consume(self) -> None:
        backoff = Backoff(FIRST_BACKOFF_SECONDS, self._policy.sweep_interval)
        while await self._work.wait() and not self._stopping.is_set():
            while not self._stopping.is_set():
                try:
                    claimed = await self._store.claim(
                        self.worker, 1, self._policy.lease_seconds, self._policy.max_attempts
                    )
                except StoreError as exc:
                    pause = backoff.next()
                    logger.warning("listener: claim failed (%s); backing off %.1fs", exc.message, pause)
                    await asyncio.sleep(pause)
                    self._work.poke()  # try again, even if no new hint comes
                    break
                backoff.reset()
                if not claimed:
                    break
                await self._handle(claimed[0])
                if not claimed[0].more:
                    break  # that was the last one claimable: later messages bring hints of their own

    async def _handle(self, message: ClaimedMessage) -> None:
        self._inflight[message.id] = message
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
            self._deliveries.poke()  # no slot was free: a round claims the reply once one is

    async def _deliver(self) -> None:
        backoff = Backoff(FIRST_BACKOFF_SECONDS, self._policy.sweep_interval)
        while await self._deliveries.wait(self._policy.delivery_poll) and not self._stopping.is_set():
            try:
                await self._delivery.start_rounds(self.worker)
                backoff.reset()
            except StoreError as exc:
                logger.warning("listener: delivery bookkeeping failed (%s); backing off", exc.message)
                await asyncio.sleep(backoff.next())
            except Exception:
                logger.exception("listener: delivery loop error")
                await asyncio.sleep(backoff.next())

    async def _shutdown(self, consumers: list[asyncio.Task[None]], helpers: list[asyncio.Task[None]]) -> None:
        logger.info("listener %s: stopping; %d message(s) in flight", self.worker, len(self._inflight))
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
        if self._categories is not None:
            await self._categories.aclose()
        self._work.close(len(consumers))
        self._deliveries.close(len(helpers))
        for task in helpers:
            task.cancel()
        # Deliveries already on the wire get the same grace as the messages being answered, side by side.
        deliveries = asyncio.create_task(self._delivery.aclose(within=self._policy.shutdown_grace))
        _, unfinished = await asyncio.wait(consumers, timeout=self._policy.shutdown_grace)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*consumers, *helpers, return_exceptions=True)
        await deliveries
        for message_id in list(self._inflight):
            with suppress(StoreError):
                await self._store.release(message_id, self.worker)
                logger.info("message %s: lease released for another worker", message_id)
        self._inflight.clear()
