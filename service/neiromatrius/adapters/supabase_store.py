"""``SupabaseMessageStore``: the ``MessageStore`` port over supabase-py (PostgREST RPCs and selects)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import httpx
from postgrest import APIError
from supabase import AsyncClient

from ..core.models import (
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
    Outcome,
    QueueStats,
    Triage,
)
from ..errors import LeaseLost, NotFound, StoreError, StoreUnavailable

# PostgREST's own codes for "the database is not there" and SQLSTATE classes that mean the same.
_UNAVAILABLE_CODES = {"PGRST000", "PGRST001", "PGRST002", "PGRST003", "502", "503", "504", "520"}
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")
# Completions finishing together go in one transaction: few enough that an operator's action on one of
# those conversations waits for a few of them, not for a listener's whole load.
COMPLETIONS_PER_CALL = 16


def _translate(exc: Exception, what: str) -> StoreError:
    if isinstance(exc, httpx.TransportError):
        return StoreUnavailable(f"{what}: Supabase unreachable ({type(exc).__name__})")
    if isinstance(exc, APIError):
        code = exc.code or ""
        if code in _UNAVAILABLE_CODES or code.startswith(_UNAVAILABLE_SQLSTATE_CLASSES):
            return StoreUnavailable(f"{what}: database unavailable ({code})")
        return StoreError(f"{what}: {code} {exc.message}")
    return StoreError(f"{what}: {type(exc).__name__}")


class SupabaseMessageStore:
    """Every write is one RPC (one transaction); see supabase/migrations for the functions.

    ``burst_windows`` (milliseconds of quiet per platform, ``"*"`` for the rest) makes a claim take a
    conversation's unfinished customer messages together, once the newest is that old: one model call
    answers them all. None claims one message at a time. ``context_limit`` makes a claim bring the conversation
    so far (that many messages at most), so the listener need not ask for it."""

    def __init__(
        self, client: AsyncClient, burst_windows: Mapping[str, int] | None = None, context_limit: int | None = None
    ) -> None:
        self._client = client
        self._burst_windows = dict(burst_windows) if burst_windows is not None else None
        self._context_limit = context_limit  # set: a claim brings the conversation so far with it
        self._delivery_records = _GroupCommit(
            functools.partial(self._together, "record_deliveries", "record_delivery"), limit=100
        )
        self._completions = _GroupCommit(
            functools.partial(self._together, "complete_messages", "complete_message"), limit=COMPLETIONS_PER_CALL
        )

    async def _rpc(self, name: str, params: dict[str, Any]) -> Any:
        try:
            response = await self._client.rpc(name, params).execute()
        except (APIError, httpx.HTTPError) as exc:
            raise _translate(exc, name) from exc
        return response.data

    async def ping(self) -> None:
        if await self._rpc("health_check", {}) is not True:
            raise StoreUnavailable("health_check did not answer true")

    async def queue_stats(self) -> QueueStats:
        return QueueStats.model_validate(await self._rpc("queue_stats", {}))

    async def intake(self, message: IncomingMessage) -> Intake:
        data = await self._rpc(
            "intake_message",
            {
                "p_client_id": message.client_id,
                "p_platform": message.platform,
                "p_chat_id": message.chat_id,
                "p_content": message.content,
                "p_webhook_url": message.webhook_url,
                "p_idempotency_key": message.idempotency_key,
                "p_platform_message_id": message.platform_message_id,
                "p_fingerprint": message.fingerprint,
                "p_payload": message.payload,
                "p_handoff_reason": message.handoff_reason,
            },
        )
        return Intake.model_validate(data)

    async def get(self, message_id: str) -> MessageView:
        data = await self._rpc("get_message", {"p_id": message_id})
        if not data:
            raise NotFound("No such message.")
        return MessageView.model_validate(data)

    async def claim(self, worker: str, limit: int, lease_seconds: float, max_attempts: int) -> list[ClaimedMessage]:
        params: dict[str, Any] = {
            "p_worker": worker, "p_limit": limit, "p_lease_seconds": lease_seconds, "p_max_attempts": max_attempts,
        }  # fmt: skip
        if self._burst_windows is not None:
            params["p_burst_windows"] = self._burst_windows
        if self._context_limit is not None:
            params["p_context_limit"] = self._context_limit
        rows = await self._rpc("claim_messages", params)
        return [ClaimedMessage.model_validate(row) for row in rows or []]

    async def extend_lease(self, message_id: str, worker: str, lease_seconds: float) -> bool:
        params = {"p_message_id": message_id, "p_worker": worker, "p_lease_seconds": lease_seconds}
        return bool(await self._rpc("extend_lease", params))

    async def context(self, message: ClaimedMessage, limit: int) -> list[ContextMessage]:
        try:
            response = await (
                self._client.table("messages")
                .select("direction,content")
                .eq("conversation_id", message.conversation_id)
                .neq("id", message.id)
                # Earlier messages, and every reply so far (replies only ever answer earlier messages).
                .or_(f'direction.eq.outbound,created_at.lt."{message.created_at.isoformat()}"')
                .order("created_at", desc=True)
                .limit(limit)
                .execute()
            )
        except (APIError, httpx.HTTPError) as exc:
            raise _translate(exc, "context") from exc
        rows: list[Any] = list(response.data or [])
        rows.reverse()
        return [
            ContextMessage(role="user" if row["direction"] == "inbound" else "assistant", content=str(row["content"]))
            for row in rows
        ]

    async def complete(
        self, message_id: str, worker: str, triage: Triage, state: MessageState, lease_delivery: float | None = None
    ) -> Completion:
        """Completed with the others that finish while the previous completion is on its way: one call
        for all of them (``complete_messages``), each in its own right. Alone, it goes at once."""
        params: dict[str, Any] = {
            "message_id": message_id,
            "worker": worker,
            "state": state.value,
            "reply": triage.reply,
            "classification": triage.classification.model_dump(mode="json"),
            "usage": triage.usage.model_dump(mode="json"),
        }
        if lease_delivery is not None:
            params["lease_seconds"] = lease_delivery
        data = await self._completions.add(params)
        status = data.get("status")
        if status in ("completed", "already_done"):
            delivery = data.get("delivery")
            return Completion(
                reply_id=str(data["reply_id"]),
                outcome=Outcome(data.get("outcome") or "sent"),  # bot replies from before the controls were all sent
                message_ids=tuple(data.get("message_ids") or (message_id,)),
                delivery=DeliveryJob.model_validate(delivery) if delivery else None,
            )
        if status == "not_found":
            raise NotFound("No such message.")
        raise LeaseLost(f"message {message_id} is held by another worker")

    async def finish_without_reply(self, message_id: str, worker: str, state: MessageState, error: str) -> None:
        params = {"p_message_id": message_id, "p_worker": worker, "p_state": state.value, "p_error": error}
        data = await self._rpc("finish_message", params)
        if data.get("status") != "finished":
            raise LeaseLost(f"message {message_id} is held by another worker")

    async def release(self, message_id: str, worker: str) -> None:
        await self._rpc("release_message", {"p_message_id": message_id, "p_worker": worker})

    async def claim_deliveries(self, worker: str, limit: int, lease_seconds: float) -> list[DeliveryJob]:
        rows = await self._rpc(
            "claim_deliveries", {"p_worker": worker, "p_limit": limit, "p_lease_seconds": lease_seconds}
        )
        return [DeliveryJob.model_validate(row) for row in rows or []]

    async def record_delivery(
        self, job: DeliveryJob, worker: str, attempt: DeliveryAttempt, next_attempt_at: datetime | None
    ) -> None:
        """Recorded with the other attempts that finish while the previous record is on its way: one call
        for all of them (``record_deliveries``). Alone, it goes at once."""
        await self._delivery_records.add(
            {
                "reply_id": job.reply_id,
                "worker": worker,
                "outcome": attempt.outcome.value,
                "webhook_id": attempt.webhook_id,
                "status_code": attempt.status_code,
                "error": attempt.error,
                "duration_ms": attempt.duration_ms,
                "next_attempt_at": next_attempt_at.isoformat() if next_attempt_at else None,
            }
        )

    async def _together(self, batch: str, single: str, items: list[dict[str, Any]]) -> list[Any]:
        """``items`` in one call of ``batch`` (each answered as ``single`` would answer it), or alone by
        ``single``. If the database refuses the batch (one bad value would), each goes on its own, so the
        others are done and only the bad one fails. Each answer, or the error for its item."""
        if len(items) > 1:
            try:
                answers = await self._rpc(batch, {"p_items": items})
            except StoreUnavailable as exc:
                return [exc] * len(items)
            except StoreError:
                pass
            else:
                if isinstance(answers, list) and len(answers) == len(items):
                    return answers
                return [StoreError(f"{batch}: {len(items)} items, an answer that is not one for each")] * len(items)
        outcomes: list[Any] = []
        for item in items:
            try:
                outcomes.append(await self._rpc(single, {f"p_{key}": value for key, value in item.items()}))
            except StoreError as exc:
                outcomes.append(exc)
        return outcomes


class _GroupCommit:
    """Items added while a batch is on its way wait and go together in the next one (at most ``limit``):
    nothing waits while the store is idle, and under load one call carries many. Each ``add`` returns
    its own item's answer, or raises its error. A caller cancelled while waiting does not take its item
    back: it goes."""

    def __init__(self, send: Callable[[list[dict[str, Any]]], Awaitable[list[Any]]], limit: int = 100) -> None:
        self._send = send
        self._limit = limit
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[Any]]] = []
        self._sending: asyncio.Task[None] | None = None

    async def add(self, item: dict[str, Any]) -> Any:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._sending is None:
            # Starts on the loop's next turn: what else is added in this one goes with it.
            self._sending = asyncio.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        batch: list[tuple[dict[str, Any], asyncio.Future[Any]]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self._limit], self._waiting[self._limit :]
                try:
                    outcomes = await self._send([item for item, _ in batch])
                    if len(outcomes) != len(batch):
                        raise RuntimeError(f"{len(batch)} items sent, {len(outcomes)} answers")
                except Exception as exc:  # a bug: still, no caller may wait forever
                    outcomes = [exc] * len(batch)
                for (_, done), outcome in zip(batch, outcomes, strict=True):
                    if done.done():
                        continue
                    if isinstance(outcome, BaseException):
                        done.set_exception(outcome)
                    else:
                        done.set_result(outcome)
        except BaseException:  # cancelled (the loop is closing): so are the callers still waiting
            for _, done in [*batch, *self._waiting]:
                done.cancel()
            self._waiting = []
            raise
        finally:
            self._sending = None


class SupabaseCategories:
    """The ``CategorySource`` port: the ``categories`` table through PostgREST."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def categories(self) -> list[Category]:
        try:
            response = await (
                self._client.table("categories")
                .select("name,description,examples")
                .eq("active", True)
                .order("position")
                .order("name")
                .execute()
            )
        except (APIError, httpx.HTTPError) as exc:
            raise _translate(exc, "categories") from exc
        return [Category.model_validate(row) for row in response.data or []]
