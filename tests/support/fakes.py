"""Test doubles for the API's ports: a store in a dict, a waiter the test completes, a URL guard, a rate
limiter on a clock the test moves."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime

from neiromatrius.adapters.rate_limiters import MemoryRateLimiter
from neiromatrius.core.models import (
    ClaimedMessage,
    Classification,
    ContextMessage,
    DeliveryAttempt,
    DeliveryJob,
    IncomingMessage,
    Intake,
    MessageState,
    MessageView,
    Triage,
)
from neiromatrius.core.ratelimit import Decision, Limit
from neiromatrius.errors import InputError, NotFound

CLASSIFICATION = Classification(
    category="greeting",
    intent="test_message",
    sentiment="positive",
    urgency="low",
    language="ru",
    confidence=0.93,
    needs_human=False,
)


class FakeMessageStore:
    """Keeps messages in a dict; a retry with a known idempotency key answers for the first message."""

    def __init__(self) -> None:
        self.intakes: list[IncomingMessage] = []  # every call, in order, retries included
        self.views: dict[str, MessageView] = {}
        self.ping_error: Exception | None = None
        self.intake_error: Exception | None = None
        self.get_error: Exception | None = None
        self.pings = 0
        self._keys: dict[str, tuple[str, str | None]] = {}  # idempotency key -> (message id, fingerprint)

    async def ping(self) -> None:
        self.pings += 1
        if self.ping_error is not None:
            raise self.ping_error

    async def intake(self, message: IncomingMessage) -> Intake:
        self.intakes.append(message)
        if self.intake_error is not None:
            raise self.intake_error
        known = self._keys.get(message.idempotency_key) if message.idempotency_key else None
        if known is not None:
            view = self.views[known[0]]
            conflict = known[1] != message.fingerprint
            return Intake(
                id=view.id, conversation_id=view.conversation_id, state=view.state, created=False, conflict=conflict
            )
        view = MessageView(id=str(uuid.uuid4()), conversation_id=str(uuid.uuid4()), state=MessageState.PENDING)
        self.views[view.id] = view
        if message.idempotency_key:
            self._keys[message.idempotency_key] = (view.id, message.fingerprint)
        return Intake(id=view.id, conversation_id=view.conversation_id, state=view.state, created=True)

    async def get(self, message_id: str) -> MessageView:
        if self.get_error is not None:
            raise self.get_error
        if message_id not in self.views:
            raise NotFound("No such message.")
        return self.views[message_id]

    def add(self, state: MessageState = MessageState.PENDING, **fields: object) -> MessageView:
        """Seed a stored message, as if an earlier intake had made it."""
        view = MessageView(id=str(uuid.uuid4()), conversation_id=str(uuid.uuid4()), state=state, **fields)
        self.views[view.id] = view
        return view

    def answer(self, message_id: str, response: str = "Здравствуйте! Чем могу помочь?") -> MessageView:
        """What the listener does: store the classification and the reply."""
        view = self.views[message_id].model_copy(
            update={
                "state": MessageState.ANSWERED,
                "classification": CLASSIFICATION,
                "response": response,
                "model": "offline-rules",
            }
        )
        self.views[message_id] = view
        return view

    def set_state(self, message_id: str, state: MessageState, **fields: object) -> None:
        self.views[message_id] = self.views[message_id].model_copy(update={"state": state, **fields})

    # The rest of the port belongs to the listener; the API must never call it.
    async def claim(self, worker: str, limit: int, lease_seconds: float, max_attempts: int) -> list[ClaimedMessage]:
        raise AssertionError("the API never claims")

    async def context(self, message: ClaimedMessage, limit: int) -> list[ContextMessage]:
        raise AssertionError("the API never reads context")

    async def complete(self, message_id: str, worker: str, triage: Triage, state: MessageState) -> str:
        raise AssertionError("the API never completes")

    async def finish_without_reply(self, message_id: str, worker: str, state: MessageState, error: str) -> None:
        raise AssertionError("the API never finishes")

    async def release(self, message_id: str, worker: str) -> None:
        raise AssertionError("the API never releases")

    async def claim_deliveries(self, worker: str, limit: int, lease_seconds: float) -> list[DeliveryJob]:
        raise AssertionError("the API never delivers")

    async def record_delivery(
        self, job: DeliveryJob, worker: str, attempt: DeliveryAttempt, next_attempt_at: datetime | None
    ) -> None:
        raise AssertionError("the API never delivers")


class FakeReplyWaiter:
    """``wait`` blocks until the test calls ``complete`` or ``time_out`` for that message."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self.waiting: asyncio.Queue[str] = asyncio.Queue()  # ids, as each wait begins
        self._outcomes: dict[str, asyncio.Future[bool]] = {}

    async def wait(self, message_id: str, within: float) -> bool:
        self.calls.append((message_id, within))
        self.waiting.put_nowait(message_id)
        return await self._outcome(message_id)

    def complete(self, message_id: str) -> None:
        self._outcome(message_id).set_result(True)

    def time_out(self, message_id: str) -> None:
        self._outcome(message_id).set_result(False)

    def _outcome(self, message_id: str) -> asyncio.Future[bool]:
        if message_id not in self._outcomes:
            self._outcomes[message_id] = asyncio.get_running_loop().create_future()
        return self._outcomes[message_id]


class FakeUrlGuard:
    """Accepts every URL except the blocked ones, and remembers what it was asked."""

    def __init__(self, blocked: frozenset[str] = frozenset()) -> None:
        self.blocked = blocked
        self.checked: list[str] = []

    async def check(self, url: str) -> None:
        self.checked.append(url)
        if url in self.blocked:
            raise InputError("X-Webhook-URL", "the webhook URL points to a private address")


class FakeCache:
    def __init__(self, status: str = "ok") -> None:
        self.status = status

    async def __call__(self) -> str:
        return self.status


class FakeRateLimiter:
    """The in-memory buckets on a clock that moves only when the test says; remembers every acquire."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.calls: list[list[Limit]] = []
        self.memory = MemoryRateLimiter(clock=lambda: self.now)

    async def acquire(self, limits: Sequence[Limit]) -> Decision:
        self.calls.append(list(limits))
        return await self.memory.acquire(limits)

    def advance(self, seconds: float) -> None:
        self.now += seconds
