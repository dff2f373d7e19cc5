"""The delivery use case: claim due replies, try each once, schedule the next try or give up."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from ..errors import NeiromatriusError
from .models import DeliveryAttempt, DeliveryJob, DeliveryOutcome
from .ports import Deliverer, DeliveryLog

logger = logging.getLogger(__name__)

JITTER = 0.10
# A receiver may ask for a pause, but not to park a reply for days.
MAX_RETRY_AFTER_SECONDS = 3600.0


def next_attempt_at(
    attempt: DeliveryAttempt,
    attempt_number: int,
    schedule: Sequence[float],
    now: datetime,
    rng: random.Random,
) -> datetime | None:
    """When to try again after attempt ``attempt_number`` (1-based); None when not to.

    Only a RETRY gets a next time: ``schedule[attempt_number - 1]`` seconds with ±10 % jitter,
    or the receiver's ``Retry-After`` (capped) when that is longer. None once the schedule is spent.
    """
    if attempt_number < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt_number}")
    if attempt.outcome is not DeliveryOutcome.RETRY or attempt_number > len(schedule):
        return None
    delay = schedule[attempt_number - 1] * rng.uniform(1 - JITTER, 1 + JITTER)
    if attempt.retry_after is not None:
        delay = max(delay, min(attempt.retry_after, MAX_RETRY_AFTER_SECONDS))
    return now + timedelta(seconds=delay)


class PlatformDeliverer:
    """Sends each reply the way its platform takes it: a platform's own deliverer, else the default
    (signed webhooks). A platform this listener is not configured for is retried on the schedule,
    which leaves time to fix the settings without losing the reply."""

    def __init__(self, default: Deliverer, by_platform: Mapping[str, Deliverer | None]) -> None:
        self._default = default
        self._by_platform = dict(by_platform)

    async def deliver(self, job: DeliveryJob) -> DeliveryAttempt:
        if job.platform not in self._by_platform:
            return await self._default.deliver(job)
        deliverer = self._by_platform[job.platform]
        if deliverer is None:
            error = f"{job.platform} is not configured on this listener"
            return DeliveryAttempt(outcome=DeliveryOutcome.RETRY, webhook_id=job.reply_id, url=None, error=error)
        return await deliverer.deliver(job)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DeliverySlot:
    """A delivery slot held while a message is answered: the completion leases the reply to this worker in
    its own transaction and the slot attempts it at once, one claim round trip fewer per message. Give it
    back with ``release`` when the answer is not sent (a draft, a handoff, a failure)."""

    def __init__(self, service: DeliveryService, worker: str) -> None:
        self._service = service
        self._worker = worker
        self._held = True

    @property
    def lease_seconds(self) -> float | None:
        """How long the completion should lease the reply for; None once the service is closing (the reply
        is then left unleased, for another listener to take at once rather than after the lease)."""
        return None if self._service.closing else self._service.lease_seconds

    def start(self, job: DeliveryJob) -> None:
        """Attempt ``job`` (leased to this worker) in this slot."""
        self._service.start(job, self._worker)  # first: the slot passes to the attempt, never seen free between
        if self._held:
            self._held = False
            self._service.unreserve()

    def release(self) -> None:
        if self._held:
            self._held = False
            self._service.unreserve()


class DeliveryService:
    """Runs delivery rounds. Each claimed reply is attempted concurrently and recorded on its own,
    so one slow or failing endpoint never holds up the others: ``start_round`` does not even wait for
    the attempts, so a receiver that hangs holds one of ``max_in_flight`` slots, never the loop."""

    def __init__(
        self,
        store: DeliveryLog,
        deliverer: Deliverer,
        *,
        schedule: Sequence[float],
        lease_seconds: float,
        batch_limit: int,
        max_in_flight: int | None = None,
        clock: Callable[[], datetime] = _utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._deliverer = deliverer
        self._schedule = tuple(schedule)
        self._lease_seconds = lease_seconds
        self._batch_limit = batch_limit
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._max_in_flight = max_in_flight if max_in_flight is not None else 4 * batch_limit
        self._in_flight: set[asyncio.Task[None]] = set()
        self._reserved = 0  # slots held by messages being answered (``reserve``)
        self.closing = False  # set by ``aclose``: no more slots, no more leases taken by completions
        # Called when a slot frees up after ``reserve`` or a round found none: a reply completed without
        # one waits for a round, which should not wait for the next poll.
        self.on_slot_free: Callable[[], None] | None = None
        self._starved = False

    @property
    def lease_seconds(self) -> float:
        return self._lease_seconds

    def reserve(self, worker: str) -> DeliverySlot | None:
        """Hold a slot for the reply of a message about to be answered; None when every slot is taken
        (the reply then waits for a round to claim it)."""
        if self.closing or self._free_slots() <= 0:
            self._starved = not self.closing
            return None
        self._reserved += 1
        return DeliverySlot(self, worker)

    def unreserve(self) -> None:
        self._reserved -= 1
        self._slot_freed()

    def _slot_freed(self) -> None:
        if self._starved and self.on_slot_free is not None and self._free_slots() > 0:
            self._starved = False
            self.on_slot_free()

    def start(self, job: DeliveryJob, worker: str) -> None:
        """Attempt a reply leased to ``worker`` on its own, recording the outcome."""
        task = asyncio.create_task(self._handle(job, worker))
        self._in_flight.add(task)
        task.add_done_callback(self._finished)

    async def start_round(self, worker: str) -> int:
        """Claim due replies for the free slots and start attempting each on its own; return how many were claimed."""
        free = self._free_slots()
        if free <= 0:
            self._starved = not self.closing
            return 0
        jobs = await self._store.claim_deliveries(worker, free, self._lease_seconds)
        for job in jobs:
            self.start(job, worker)
        return len(jobs)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slot_freed()
        if not task.cancelled() and (bug := task.exception()) is not None:
            logger.error("delivery: unexpected error", exc_info=bug)

    async def aclose(self, within: float = 0.0) -> None:
        """Let the attempts in flight finish for up to ``within`` seconds, then abandon the rest: their
        leases run out and they are tried again (same webhook-id)."""
        self.closing = True
        if self._in_flight and within > 0:
            await asyncio.wait(set(self._in_flight), timeout=within)
        for task in self._in_flight:
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def start_rounds(self, worker: str) -> int:
        """Start rounds until one claims less than it asked for (nothing more was due) or no slot is
        free; return how many were claimed. A short round already saw the queue empty: asking again would
        cost one more round trip per wake-up."""
        total = 0
        while True:
            free = self._free_slots()
            claimed = await self.start_round(worker)
            total += claimed
            if claimed < free or free <= 0:
                return total

    def _free_slots(self) -> int:
        """How many replies one round may claim: a batch, or fewer when the attempts in flight (and the slots
        held for answers in progress) fill the slots."""
        return min(self._batch_limit, self._max_in_flight - len(self._in_flight) - self._reserved)

    async def _handle(self, job: DeliveryJob, worker: str) -> None:
        try:
            attempt = await self._deliverer.deliver(job)
            next_at = next_attempt_at(attempt, job.attempt, self._schedule, self._clock(), self._rng)
            if attempt.outcome is DeliveryOutcome.RETRY and next_at is None:
                attempt = attempt.model_copy(update={"outcome": DeliveryOutcome.FAILED})
            await self._store.record_delivery(job, worker, attempt, next_at)
        except NeiromatriusError as exc:
            # The lease runs out and the reply is attempted again; webhook-id lets receivers dedupe.
            logger.warning("delivery reply=%s attempt=%d not recorded: %s", job.reply_id, job.attempt, exc.code)
            return
        logger.info(
            "delivery reply=%s attempt=%d outcome=%s status=%s ms=%d next=%s error=%s",
            job.reply_id,
            job.attempt,
            attempt.outcome.value,
            attempt.status_code if attempt.status_code is not None else "-",
            attempt.duration_ms,
            next_at.isoformat() if next_at is not None else "-",
            attempt.error or "-",
        )
