"""The ports: what the use cases need from the outside world, as Protocols. Adapters implement them.

Every Protocol of the service is here; tests keep one ``Fake<Role>`` for each in ``tests/support/fakes.py``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from .models import (
    Category,
    ClaimedMessage,
    Completion,
    ContextMessage,
    DeliveryAttempt,
    DeliveryJob,
    IncomingMessage,
    Intake,
    MessageState,
    MessageView,
    QueueStats,
    Triage,
)
from .ratelimit import Decision, Limit


class MessageIntake(Protocol):
    """Where messages come in and are read back (the API, Telegram's webhook and poller)."""

    async def ping(self) -> None:
        """Return when the database answers; raise ``StoreUnavailable`` otherwise."""

    async def intake(self, message: IncomingMessage) -> Intake: ...

    async def get(self, message_id: str) -> MessageView:
        """Raise ``NotFound`` for an unknown id."""
        ...


class WorkQueue(Protocol):
    """The inbound messages as a queue of leased work (the listener and the triage use case)."""

    async def claim(self, worker: str, limit: int, lease_seconds: float, max_attempts: int) -> list[ClaimedMessage]:
        """Lease up to ``limit`` messages: oldest first, at most one per conversation."""
        ...

    async def extend_lease(self, message_id: str, worker: str, lease_seconds: float) -> bool:
        """Keep the lease while working; False when it was lost to another worker."""
        ...

    async def context(self, message: ClaimedMessage, limit: int) -> list[ContextMessage]:
        """The conversation's messages before ``message``, oldest first, at most ``limit``."""
        ...

    async def complete(
        self, message_id: str, worker: str, triage: Triage, state: MessageState, lease_delivery: float | None = None
    ) -> Completion:
        """Store classification + reply + state in one transaction (the whole burst); say what it became.

        The conversation controls decide the outcome there (sent, draft, handoff, discarded), not the caller.
        With ``lease_delivery`` (seconds) the reply to send comes back leased to ``worker`` in the same
        transaction (``Completion.delivery``), as ``DeliveryLog.claim_deliveries`` would lease it.
        Raise ``LeaseLost`` when another worker holds the message now.
        """
        ...

    async def finish_without_reply(self, message_id: str, worker: str, state: MessageState, error: str) -> None:
        """Hand the message to a human or fail it, keeping the reason."""
        ...

    async def release(self, message_id: str, worker: str) -> None:
        """Give the lease back (on shutdown) so another worker takes the message at once."""
        ...


class CategorySource(Protocol):
    """Where the business keeps its categories (the listener reloads them when they change)."""

    async def categories(self) -> list[Category]:
        """The active categories, in the order they are offered; raise ``StoreError`` if unreadable."""
        ...


class DeliveryLog(Protocol):
    """Replies due for delivery, and the log of every attempt (the delivery use case)."""

    async def claim_deliveries(self, worker: str, limit: int, lease_seconds: float) -> list[DeliveryJob]:
        """Lease replies whose next delivery attempt is due."""
        ...

    async def record_delivery(
        self, job: DeliveryJob, worker: str, attempt: DeliveryAttempt, next_attempt_at: datetime | None
    ) -> None:
        """Log the attempt and set the reply's delivery state (retry at ``next_attempt_at`` if given)."""
        ...


class QueueMonitor(Protocol):
    """Whether the database answers and how long the queue is (health checks and metrics)."""

    async def ping(self) -> None:
        """Return when the database answers; raise ``StoreUnavailable`` otherwise."""

    async def queue_stats(self) -> QueueStats: ...


class MessageStore(MessageIntake, WorkQueue, DeliveryLog, QueueMonitor, Protocol):
    """The database in all four roles: what the Supabase adapter implements (one RPC per write)."""


class Responder(Protocol):
    """Classifies a message and writes the reply in one call.

    Raises ``UnusableAnswer`` (refusal, truncated, invalid), ``ModelQuotaExceeded`` or ``ModelUnavailable``.
    """

    async def respond(self, message: ClaimedMessage, context: list[ContextMessage]) -> Triage: ...


class Deliverer(Protocol):
    """Makes one delivery attempt; never raises for the receiver's failures, it reports them."""

    async def deliver(self, job: DeliveryJob) -> DeliveryAttempt: ...


class UrlGuard(Protocol):
    """Decides whether a webhook URL may be accepted at intake (raise ``InputError`` if not)."""

    async def check(self, url: str) -> None: ...


class ReplyWaiter(Protocol):
    """Learns from the change feed that a message reached a final state."""

    async def wait(self, message_id: str, within: float) -> bool:
        """True when the message is (or becomes within ``within`` seconds) answered, handed off or failed."""
        ...


class RateLimiter(Protocol):
    """Token buckets kept somewhere (memory, Redis)."""

    async def acquire(self, limits: Sequence[Limit]) -> Decision:
        """Take one token from every bucket in ``limits`` atomically, or from none and say who refused."""
        ...


class Resolver(Protocol):
    """Name resolution for the SSRF guard."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses ``host`` resolves to (A and AAAA); raise ``ResolutionFailed`` if none."""
        ...


class Feed(Protocol):
    """The change feed's hints: new inbound messages, and (re)subscriptions, for the listener."""

    async def start(self, within: float = 10.0) -> bool: ...

    async def stop(self) -> None: ...
