"""One ``Fake<Role>`` for each port of ``neiromatrius.core.ports`` (``ports_check.py`` has mypy hold them
to the Protocols): an intake in a dict, a work queue and a delivery log that record what they were
told, a waiter the test completes, a URL guard, a rate limiter on a clock the test moves, a scripted
model and deliverer, a DNS table and a feed the test pokes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from neiromatrius.adapters.rate_limiters import MemoryRateLimiter
from neiromatrius.core.models import (
    Category,
    ClaimedMessage,
    Classification,
    Completion,
    ContextMessage,
    DeliveryAttempt,
    DeliveryJob,
    IncomingMessage,
    Intake,
    MessageState,
    MessageView,
    Outcome,
    QueueStats,
    Triage,
)
from neiromatrius.core.ratelimit import Decision, Limit
from neiromatrius.errors import InputError, NotFound, ResolutionFailed, StoreUnavailable

CLASSIFICATION = Classification(
    category="greeting",
    intent="test_message",
    sentiment="positive",
    urgency="low",
    language="ru",
    confidence=0.93,
    needs_human=False,
)


class FakeMessageIntake:
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
        seed = {"id": str(uuid.uuid4()), "conversation_id": str(uuid.uuid4()), "state": state, **fields}
        view = MessageView.model_validate(seed)
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


class FakeWorkQueue:
    """Records what triage stores; the lease is kept (or lost), ``complete`` can fail a few times first."""

    def __init__(self, *, keep_lease: bool = True, complete_failures: int = 0) -> None:
        self.queued: list[ClaimedMessage] = []  # what ``claim`` hands out, oldest first
        self.completed: list[tuple[str, str, Triage, MessageState]] = []
        self.finished: list[tuple[str, MessageState, str]] = []
        self.released: list[tuple[str, str]] = []
        self.extensions = 0
        self.extended = asyncio.Event()  # set once the lease was extended twice
        self.outcome: Outcome | None = None  # what the controls make of every answer; None: as asked
        self.context_limit: int | None = None
        self.delivery_leases: list[float | None] = []  # what each ``complete`` asked for
        self._keep_lease = keep_lease
        self._complete_failures = complete_failures
        self._claimed: dict[str, ClaimedMessage] = {}

    async def claim(self, worker: str, limit: int, lease_seconds: float, max_attempts: int) -> list[ClaimedMessage]:
        claimed, self.queued = self.queued[:limit], self.queued[limit:]
        more = bool(self.queued)
        self._claimed.update((message.id, message) for message in claimed)
        return [message.model_copy(update={"more": more}) for message in claimed]

    async def context(self, message: ClaimedMessage, limit: int) -> list[ContextMessage]:
        self.context_limit = limit
        return [ContextMessage(role="user", content="Hi"), ContextMessage(role="assistant", content="Hello!")]

    async def extend_lease(self, message_id: str, worker: str, lease_seconds: float) -> bool:
        self.extensions += 1
        if self.extensions >= 2:
            self.extended.set()
        return self._keep_lease

    async def complete(
        self, message_id: str, worker: str, triage: Triage, state: MessageState, lease_delivery: float | None = None
    ) -> Completion:
        if self._complete_failures:
            self._complete_failures -= 1
            raise StoreUnavailable("complete_message: database unavailable (PGRST000)")
        self.completed.append((message_id, worker, triage, state))
        self.delivery_leases.append(lease_delivery)
        outcome = self.outcome or (Outcome.HANDOFF if state is MessageState.HANDOFF else Outcome.SENT)
        reply_id = f"reply-{len(self.completed)}"
        claimed = self._claimed.get(message_id)
        delivery = None
        if lease_delivery is not None and outcome is Outcome.SENT and claimed is not None:
            delivery = DeliveryJob(
                reply_id=reply_id, message_id=message_id, conversation_id=claimed.conversation_id,
                client_id=claimed.client_id, platform=claimed.platform, chat_id=claimed.chat_id,
                webhook_url="https://example.com/hook", content=triage.reply, classification=triage.classification,
                attempt=1, created_at=claimed.created_at,
            )  # fmt: skip
        return Completion(reply_id=reply_id, outcome=outcome, message_ids=(message_id,), delivery=delivery)

    async def finish_without_reply(self, message_id: str, worker: str, state: MessageState, error: str) -> None:
        self.finished.append((message_id, state, error))

    async def release(self, message_id: str, worker: str) -> None:
        self.released.append((message_id, worker))


@dataclass
class Recorded:
    job: DeliveryJob
    worker: str
    attempt: DeliveryAttempt
    next_attempt_at: datetime | None


@dataclass
class FakeDeliveryLog:
    """Hands out ``due`` replies and records every attempt; ``when_recorded(n)`` is set at the n-th record."""

    due: list[DeliveryJob] = field(default_factory=list)
    recorded: list[Recorded] = field(default_factory=list)
    claims: list[tuple[str, int, float]] = field(default_factory=list)
    fail_recording_for: set[str] = field(default_factory=set)
    recorded_count_reached: dict[int, asyncio.Event] = field(default_factory=dict)

    async def claim_deliveries(self, worker: str, limit: int, lease_seconds: float) -> list[DeliveryJob]:
        self.claims.append((worker, limit, lease_seconds))
        claimed, self.due = self.due[:limit], self.due[limit:]
        return claimed

    async def record_delivery(
        self, job: DeliveryJob, worker: str, attempt: DeliveryAttempt, next_attempt_at: datetime | None
    ) -> None:
        if job.reply_id in self.fail_recording_for:
            raise StoreUnavailable("PostgREST is down")
        self.recorded.append(Recorded(job, worker, attempt, next_attempt_at))
        event = self.recorded_count_reached.get(len(self.recorded))
        if event is not None:
            event.set()

    def when_recorded(self, count: int) -> asyncio.Event:
        return self.recorded_count_reached.setdefault(count, asyncio.Event())

    def by_reply(self) -> dict[str, Recorded]:
        return {entry.job.reply_id: entry for entry in self.recorded}


class FakeQueueMonitor:
    """A queue of fixed size; ``ping_error`` makes the database look down."""

    def __init__(self, stats: QueueStats | None = None) -> None:
        self.stats = stats or QueueStats(pending=0, processing=0, oldest_pending_seconds=0.0)
        self.ping_error: Exception | None = None

    async def ping(self) -> None:
        if self.ping_error is not None:
            raise self.ping_error

    async def queue_stats(self) -> QueueStats:
        return self.stats


class FakeResponder:
    """Answers with ``outcome`` (or raises it), after ``wait_for`` when given; notes a cancellation."""

    def __init__(self, outcome: Triage | Exception, wait_for: asyncio.Event | None = None) -> None:
        self.outcome = outcome
        self.wait_for = wait_for
        self.contexts: list[list[ContextMessage]] = []
        self.cancelled = False

    async def respond(self, message: ClaimedMessage, context: list[ContextMessage]) -> Triage:
        self.contexts.append(context)
        try:
            if self.wait_for is not None:
                await self.wait_for.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


class FakeDeliverer:
    """Answers each reply id with a scripted attempt (or ``default``); ids listed in ``held`` wait for their
    event. Records every job it was given."""

    def __init__(self, outcomes: dict[str, DeliveryAttempt], default: DeliveryAttempt | None = None) -> None:
        self.outcomes = outcomes
        self.default = default
        self.held: dict[str, asyncio.Event] = {}
        self.started: dict[str, asyncio.Event] = {}
        self.jobs: list[DeliveryJob] = []
        self.delivered: list[str] = []

    async def deliver(self, job: DeliveryJob) -> DeliveryAttempt:
        self.jobs.append(job)
        self.started.setdefault(job.reply_id, asyncio.Event()).set()
        if job.reply_id in self.held:
            await self.held[job.reply_id].wait()
        self.delivered.append(job.reply_id)
        outcome = self.outcomes.get(job.reply_id, self.default)
        if outcome is None:
            raise AssertionError(f"no scripted attempt for reply {job.reply_id}")
        return outcome


class FakeResolver:
    """A DNS table: each name has one answer list per lookup in turn (the last repeats); a name missing
    from it does not resolve. Records every lookup as (host, port)."""

    def __init__(self, answers: dict[str, list[list[str]]] | None = None) -> None:
        self.answers = answers or {}
        self.lookups: list[tuple[str, int]] = []

    @property
    def hosts(self) -> list[str]:
        return [host for host, _ in self.lookups]

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        if host not in self.answers:
            raise ResolutionFailed(f"{host} does not resolve")
        turn = self.hosts.count(host) - 1
        answers = self.answers[host]
        return answers[min(turn, len(answers) - 1)]


class FakeFeed:
    """A change feed the test drives: ``hint`` is a new row's event, ``resubscribe`` a (re)subscription."""

    def __init__(self, on_message: Callable[[str], None], on_ready: Callable[[], None], subscribed: bool = True):
        self._on_message = on_message
        self._on_ready = on_ready
        self._subscribed = subscribed
        self.started = False
        self.stopped = False

    async def start(self, within: float = 10.0) -> bool:
        self.started = True
        if self._subscribed:
            self._on_ready()
        return self._subscribed

    async def stop(self) -> None:
        self.stopped = True

    def hint(self, message_id: str) -> None:
        self._on_message(message_id)

    def resubscribe(self) -> None:
        self._on_ready()


class FakeCategorySource:
    """The ``categories`` table: ``rows`` is what the next read returns; ``fail`` makes reads raise."""

    def __init__(self, rows: Sequence[Category] = ()) -> None:
        self.rows = list(rows)
        self.fail = False
        self.reads = 0

    async def categories(self) -> list[Category]:
        self.reads += 1
        if self.fail:
            raise StoreUnavailable("categories: Supabase unreachable (ConnectError)")
        return list(self.rows)
