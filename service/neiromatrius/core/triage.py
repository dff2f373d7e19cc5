"""The triage use case: one claimed message → context → one model call → stored classification + reply."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import LeaseLost, ModelQuotaExceeded, ResponderError, StoreError, UnusableAnswer
from .backoff import Backoff
from .delivery import DeliverySlot
from .guard import ReplyGuard
from .models import ClaimedMessage, MessageState, Outcome, Triage, Usage
from .ports import Responder, WorkQueue

logger = logging.getLogger(__name__)
T = TypeVar("T")
STORE_FIRST_RETRY_SECONDS = 0.25
STORE_MAX_RETRY_SECONDS = 4.0
# A discarded answer (None) leaves its messages to the operator who acted, or pending for the bot again.
_STATE_OF_OUTCOME = {Outcome.SENT: MessageState.ANSWERED, Outcome.DRAFT: MessageState.DRAFT,
                     Outcome.HANDOFF: MessageState.HANDOFF}  # fmt: skip


@dataclass(frozen=True)
class TriagePolicy:
    context_messages: int = 20
    lease_seconds: float = 60.0
    store_retries: int = 5  # a database blip must not waste the model's answer


class TriageService:
    def __init__(
        self,
        store: WorkQueue,
        responder: Responder,
        policy: TriagePolicy,
        guard: ReplyGuard,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._responder = responder
        self._policy = policy
        self._guard = guard
        self._sleep = sleep

    async def process(
        self, message: ClaimedMessage, worker: str, slot: DeliverySlot | None = None
    ) -> MessageState | None:
        """Answer (or draft), hand off or fail ``message`` and its burst; None when it is not the bot's to
        finish any more: another worker took it over, or an operator acted while the model answered.

        With a delivery ``slot`` the completion leases the reply it sends, and the slot attempts it at once."""
        started = time.monotonic()
        try:
            state, detail = await self._process(message, worker, slot)
        except LeaseLost:
            logger.warning("message %s: lease lost to another worker; leaving it", message.id)
            return None
        logger.info(
            "message %s: %s attempt=%d %s ms=%d",
            message.id, state.value if state else "discarded", message.attempts, detail,
            (time.monotonic() - started) * 1000,
        )  # fmt: skip
        return state

    async def _process(
        self, message: ClaimedMessage, worker: str, slot: DeliverySlot | None
    ) -> tuple[MessageState | None, str]:
        if message.context is not None:  # the claim brought it
            context = list(message.context[-self._policy.context_messages :])
        else:
            context = await self._store.context(message, self._policy.context_messages)
        try:
            triage = await self._with_lease(message, worker, self._responder.respond(message, context))
            self._guard.check(triage)  # whichever responder answered: a leak goes to a human, unsent
        except UnusableAnswer as exc:
            await self._finish(message, worker, MessageState.HANDOFF, f"unusable_answer: {exc.message}")
            spent = "" if exc.usage is None else f" {_cost(exc.usage)}"  # the tokens were spent all the same
            return MessageState.HANDOFF, f"reason={exc.message}{spent}"
        except ModelQuotaExceeded as exc:
            await self._finish(message, worker, MessageState.FAILED, f"insufficient_quota: {exc.message}")
            return MessageState.FAILED, "reason=insufficient_quota"
        except ResponderError as exc:
            await self._finish(message, worker, MessageState.FAILED, f"{exc.code}: {exc.message}")
            return MessageState.FAILED, f"reason={exc.code}"
        state = MessageState.HANDOFF if triage.classification.needs_human else MessageState.ANSWERED
        lease = slot.lease_seconds if slot is not None else None
        done = await self._retrying(lambda: self._store.complete(message.id, worker, triage, state, lease))
        if slot is not None and done.delivery is not None:
            slot.start(done.delivery)
        # The controls decided in the completing transaction; report what they made of the answer.
        final = _STATE_OF_OUTCOME.get(done.outcome)
        burst = f" burst={len(message.burst)}" if len(message.burst) > 1 else ""
        return final, f"outcome={done.outcome.value}{burst} {_summary(triage)}"

    async def _finish(self, message: ClaimedMessage, worker: str, state: MessageState, error: str) -> None:
        await self._retrying(lambda: self._store.finish_without_reply(message.id, worker, state, error))

    async def _with_lease(self, message: ClaimedMessage, worker: str, work: Awaitable[T]) -> T:
        """Run ``work`` while renewing the lease, so a slow model never lets a second worker in."""
        task = asyncio.ensure_future(work)
        interval = self._policy.lease_seconds / 3
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=interval)
                if done:
                    return task.result()
                try:
                    still_ours = await self._store.extend_lease(message.id, worker, self._policy.lease_seconds)
                except StoreError as exc:
                    logger.warning("message %s: could not extend the lease: %s", message.id, exc.message)
                    continue
                if not still_ours:
                    raise LeaseLost(f"message {message.id} was taken over")
        finally:
            task.cancel()  # a no-op once it is done; otherwise nobody waits for it any more

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        backoff = Backoff(STORE_FIRST_RETRY_SECONDS, STORE_MAX_RETRY_SECONDS)
        for attempt in range(self._policy.store_retries + 1):
            try:
                return await call()
            except StoreError as exc:
                if not exc.retryable or attempt == self._policy.store_retries:
                    raise
                pause = backoff.next()
                logger.warning("store unavailable (%s); retrying in %.2fs", exc.message, pause)
                await self._sleep(pause)
        raise AssertionError("unreachable")


def _summary(triage: Triage) -> str:
    c = triage.classification
    return f"category={c.category} urgency={c.urgency} needs_human={c.needs_human} {_cost(triage.usage)}"


def _cost(u: Usage) -> str:
    return f"model={u.model} tokens={u.prompt_tokens}+{u.completion_tokens} model_ms={u.latency_ms}"
