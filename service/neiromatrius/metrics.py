"""Prometheus metrics: one registry per process, filled by thin wrappers around the adapters.

Counters say what this process did (requests, intake, model calls and tokens, deliveries, finished
messages by state and category); the queue gauges are read from the database at scrape time, so
every replica reports the same, whole queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .core.models import (
    ClaimedMessage,
    Completion,
    ContextMessage,
    DeliveryAttempt,
    DeliveryJob,
    DeliveryOutcome,
    IncomingMessage,
    Intake,
    MessageState,
    MessageView,
    Outcome,
    QueueStats,
    Triage,
)
from .core.ports import Deliverer, MessageIntake, Responder, WorkQueue
from .errors import NeiromatriusError, UnusableAnswer

logger = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
QUEUE_STATS_WITHIN = 2.0  # a scrape must not hang on a slow database
# The state a completion leaves its messages in, as the counter names it.
_FINISHED_AS = {Outcome.SENT: "answered", Outcome.DRAFT: "draft", Outcome.HANDOFF: "handoff",
                Outcome.DISCARDED: "discarded"}  # fmt: skip
NO_CATEGORY = "none"  # handed off or failed before the model classified it
MODEL_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.http_requests = Counter(
            "neiromatrius_http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=registry
        )
        self.http_duration = Histogram(
            "neiromatrius_http_request_duration_seconds", "Time to answer.", ["method", "route"], registry=registry
        )
        self.messages_received = Counter(
            "neiromatrius_messages_received",
            "Inbound messages at intake: created, or a duplicate of one already stored.",
            ["platform", "outcome"],
            registry=registry,
        )
        self.messages_finished = Counter(
            "neiromatrius_messages_finished",
            "Inbound messages this process finished, by final state (answered, draft, handoff, failed, or "
            "discarded: an operator acted while the model answered) and category; a burst counts each message.",
            ["state", "category"],
            registry=registry,
        )
        self.openai_duration = Histogram(
            "neiromatrius_openai_request_duration_seconds",
            "One triage call to the model, retries included, by outcome.",
            ["outcome"],
            buckets=MODEL_BUCKETS,
            registry=registry,
        )
        self.openai_tokens = Counter(
            "neiromatrius_openai_tokens", "Tokens the model used, by kind.", ["kind"], registry=registry
        )
        self.delivery_attempts = Counter(
            "neiromatrius_delivery_attempts", "Reply delivery attempts, by outcome.", ["platform", "outcome"],
            registry=registry,
        )  # fmt: skip
        self.delivery_failures = Counter(
            "neiromatrius_delivery_failures", "Delivery attempts that did not deliver.", ["platform", "outcome"],
            registry=registry,
        )  # fmt: skip
        self.queue_messages = Gauge(
            "neiromatrius_queue_messages", "Unfinished inbound messages in the database.", ["state"], registry=registry
        )
        self.oldest_pending = Gauge(
            "neiromatrius_oldest_pending_message_age_seconds",
            "How long the oldest pending message has waited (0 when none waits).",
            registry=registry,
        )
        self.queue_stats_up = Gauge(
            "neiromatrius_queue_stats_up", "1 when this scrape read the queue from the database.", registry=registry
        )

    async def render(self, queue_stats: Callable[[], Awaitable[QueueStats]] | None = None) -> bytes:
        """The text exposition, with the queue gauges read just now when a reader is given."""
        if queue_stats is not None:
            try:
                async with asyncio.timeout(QUEUE_STATS_WITHIN):
                    stats = await queue_stats()
            except (NeiromatriusError, TimeoutError) as exc:
                logger.warning("metrics: the queue could not be read: %r", exc)
                self.queue_stats_up.set(0)
            else:
                self.queue_messages.labels("pending").set(stats.pending)
                self.queue_messages.labels("processing").set(stats.processing)
                self.oldest_pending.set(stats.oldest_pending_seconds)
                self.queue_stats_up.set(1)
        return generate_latest(self.registry)


class MeteredIntake:
    """The intake, counting what arrives: created, or a duplicate of a message already stored."""

    def __init__(self, intake: MessageIntake, metrics: Metrics) -> None:
        self._intake = intake
        self._metrics = metrics

    async def ping(self) -> None:
        await self._intake.ping()

    async def intake(self, message: IncomingMessage) -> Intake:
        intake = await self._intake.intake(message)
        outcome = "created" if intake.created else "duplicate"
        self._metrics.messages_received.labels(message.platform, outcome).inc()
        return intake

    async def get(self, message_id: str) -> MessageView:
        return await self._intake.get(message_id)


class MeteredWorkQueue:
    """The work queue, counting how messages finish, by state and category."""

    def __init__(self, queue: WorkQueue, metrics: Metrics) -> None:
        self._queue = queue
        self._metrics = metrics

    async def claim(self, worker: str, limit: int, lease_seconds: float, max_attempts: int) -> list[ClaimedMessage]:
        return await self._queue.claim(worker, limit, lease_seconds, max_attempts)

    async def extend_lease(self, message_id: str, worker: str, lease_seconds: float) -> bool:
        return await self._queue.extend_lease(message_id, worker, lease_seconds)

    async def context(self, message: ClaimedMessage, limit: int) -> list[ContextMessage]:
        return await self._queue.context(message, limit)

    async def complete(
        self, message_id: str, worker: str, triage: Triage, state: MessageState, lease_delivery: float | None = None
    ) -> Completion:
        done = await self._queue.complete(message_id, worker, triage, state, lease_delivery)
        label = _FINISHED_AS[done.outcome]
        self._metrics.messages_finished.labels(label, triage.classification.category).inc(len(done.message_ids) or 1)
        return done

    async def finish_without_reply(self, message_id: str, worker: str, state: MessageState, error: str) -> None:
        await self._queue.finish_without_reply(message_id, worker, state, error)
        self._metrics.messages_finished.labels(state.value, NO_CATEGORY).inc()

    async def release(self, message_id: str, worker: str) -> None:
        await self._queue.release(message_id, worker)


class MeteredResponder:
    """The model, timed, with its tokens counted (also for answers that could not be used)."""

    def __init__(self, responder: Responder, metrics: Metrics) -> None:
        self._responder = responder
        self._metrics = metrics

    async def respond(self, message: ClaimedMessage, context: list[ContextMessage]) -> Triage:
        started = time.perf_counter()
        outcome = "ok"
        try:
            triage = await self._responder.respond(message, context)
        except UnusableAnswer as exc:
            outcome = exc.code
            if exc.usage is not None:
                self._count_tokens(exc.usage.prompt_tokens, exc.usage.completion_tokens)
            raise
        except NeiromatriusError as exc:
            outcome = exc.code
            raise
        finally:
            self._metrics.openai_duration.labels(outcome).observe(time.perf_counter() - started)
        self._count_tokens(triage.usage.prompt_tokens, triage.usage.completion_tokens)
        return triage

    def _count_tokens(self, prompt: int, completion: int) -> None:
        self._metrics.openai_tokens.labels("prompt").inc(prompt)
        self._metrics.openai_tokens.labels("completion").inc(completion)


class MeteredDeliverer:
    def __init__(self, deliverer: Deliverer, metrics: Metrics) -> None:
        self._deliverer = deliverer
        self._metrics = metrics

    async def deliver(self, job: DeliveryJob) -> DeliveryAttempt:
        attempt = await self._deliverer.deliver(job)
        self._metrics.delivery_attempts.labels(job.platform, attempt.outcome.value).inc()
        if attempt.outcome is not DeliveryOutcome.DELIVERED:
            self._metrics.delivery_failures.labels(job.platform, attempt.outcome.value).inc()
        return attempt
