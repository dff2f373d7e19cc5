"""``SupabaseMessageStore``: the ``MessageStore`` port over supabase-py (PostgREST RPCs and selects)."""

from __future__ import annotations

from collections.abc import Mapping
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
        params: dict[str, Any] = {
            "p_message_id": message_id,
            "p_worker": worker,
            "p_state": state.value,
            "p_reply": triage.reply,
            "p_classification": triage.classification.model_dump(mode="json"),
            "p_usage": triage.usage.model_dump(mode="json"),
        }
        if lease_delivery is not None:
            params["p_lease_seconds"] = lease_delivery
        data = await self._rpc("complete_message", params)
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
        await self._rpc(
            "record_delivery",
            {
                "p_reply_id": job.reply_id,
                "p_worker": worker,
                "p_outcome": attempt.outcome.value,
                "p_webhook_id": attempt.webhook_id,
                "p_status_code": attempt.status_code,
                "p_error": attempt.error,
                "p_duration_ms": attempt.duration_ms,
                "p_next_attempt_at": next_attempt_at.isoformat() if next_attempt_at else None,
            },
        )


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
