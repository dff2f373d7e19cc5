"""Delivers replies to the caller's ``X-Webhook-URL``, signed the Standard Webhooks way.

One call is one attempt. The receiver's failures are reported as a ``DeliveryAttempt``, never
raised: the delivery use case decides when to try again.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from ..config import Settings
from ..core.models import DeliveryAttempt, DeliveryJob, DeliveryOutcome
from ..errors import BlockedDestination, ConfigError
from .netguard import GUARD_EXTENSION
from .retry_after import parse_retry_after

EVENT_TYPE = "message.replied"
USER_AGENT = "Neiromatrius-Webhooks/1.0"
# A receiver's answer is read to its end, so the connection is kept, when it is this short and quick.
DRAIN_BYTES = 64 * 1024
DRAIN_SECONDS = 1.0


def webhook_secret(settings: Settings) -> str:
    """``WEBHOOK_SECRET`` if set, else a ``whsec_`` secret derived from ``SECRET_KEY``."""
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value()
    return "whsec_" + base64.b64encode(settings.derived_secret("webhook-signing")).decode("ascii")


def build_payload(job: DeliveryJob) -> bytes:
    """The exact bytes sent and signed: compact JSON in the Standard Webhooks envelope."""
    created = job.created_at if job.created_at.tzinfo else job.created_at.replace(tzinfo=UTC)
    event: dict[str, Any] = {
        "type": EVENT_TYPE,
        "timestamp": created.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": {
            "message_id": job.message_id,
            "reply_id": job.reply_id,
            "conversation_id": job.conversation_id,
            "client_id": job.client_id,
            "platform": job.platform,
            "chat_id": job.chat_id,
            "response": job.content,
            "classification": job.classification.model_dump(mode="json") if job.classification else None,
        },
    }
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class WebhookDeliverer:
    """The ``Deliverer`` for webhooks. ``client`` is the process's shared client, whose transport is a
    ``GuardedTransport``; each POST asks it to check and pin the destination."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        secret: str,
        timeout: float,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        try:
            self._signer = Webhook(secret)
        except (ValueError, EmptyWebhookSecretError) as exc:
            raise ConfigError("WEBHOOK_SECRET", "must be whsec_ followed by base64") from exc
        self._client = client
        self._timeout = timeout
        self._clock = clock

    async def deliver(self, job: DeliveryJob) -> DeliveryAttempt:
        if job.webhook_url is None:
            return DeliveryAttempt(
                outcome=DeliveryOutcome.FAILED, webhook_id=job.reply_id, url=None, error="no webhook URL"
            )
        started = time.perf_counter()
        result = await self._attempt(job, job.webhook_url)
        duration_ms = round((time.perf_counter() - started) * 1000)
        return result.model_copy(update={"duration_ms": duration_ms})

    async def _attempt(self, job: DeliveryJob, url: str) -> DeliveryAttempt:
        def failed(outcome: DeliveryOutcome, error: str) -> DeliveryAttempt:
            return DeliveryAttempt(outcome=outcome, webhook_id=job.reply_id, url=url, error=error)

        try:
            response = await self._post(job, url)
        except BlockedDestination as exc:
            return failed(DeliveryOutcome.FAILED, f"blocked_destination: {exc.message}")
        except (TimeoutError, httpx.TimeoutException) as exc:
            return failed(DeliveryOutcome.RETRY, f"timeout: no answer within {self._timeout:g} s ({_name(exc)})")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            return failed(DeliveryOutcome.FAILED, f"invalid webhook URL ({_name(exc)})")
        except httpx.HTTPError as exc:
            return failed(DeliveryOutcome.RETRY, f"connection failed: {_name(exc)}: {str(exc)[:160]}")
        outcome, error = _judge(response)
        retry_after = None
        if outcome is DeliveryOutcome.RETRY:
            retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
        return DeliveryAttempt(
            outcome=outcome,
            webhook_id=job.reply_id,
            url=url,
            status_code=response.status_code,
            error=error,
            retry_after=retry_after,
        )

    async def _post(self, job: DeliveryJob, url: str) -> httpx.Response:
        body = build_payload(job)
        headers = self._headers(job.reply_id, body)
        request = self._client.build_request(
            "POST", url, content=body, timeout=self._timeout, extensions={GUARD_EXTENSION: True}
        )
        # The client is shared with Supabase and OpenAI: send our own headers only, never its default
        # headers (API keys), auth or cookies.
        framing = {name: request.headers[name] for name in ("host", "content-length")}
        request.headers = httpx.Headers({**framing, **headers})
        # httpx's timeout bounds each read; this bounds the whole attempt (a receiver trickling bytes).
        async with asyncio.timeout(self._timeout):
            response = await self._client.send(request, stream=True, auth=None, follow_redirects=False)
        await _finish(response)
        return response

    def _headers(self, webhook_id: str, body: bytes) -> dict[str, str]:
        sent_at = datetime.fromtimestamp(int(self._clock().timestamp()), UTC)
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": self._signer.sign(webhook_id, sent_at, body.decode("utf-8")),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }


async def _finish(response: httpx.Response) -> None:
    """Read a short answer to its end so its connection carries the next webhook (httpcore keeps a
    connection only once its response was read whole); cut a long or slow one off instead. Only the
    status and headers decide the outcome, and they are in by now."""
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read > DRAIN_BYTES:
                    break
    except (TimeoutError, httpx.HTTPError):
        pass
    finally:
        await response.aclose()


def _judge(response: httpx.Response) -> tuple[DeliveryOutcome, str | None]:
    status = response.status_code
    if 200 <= status < 300:
        return DeliveryOutcome.DELIVERED, None
    if status == 410:
        return DeliveryOutcome.STOPPED, "HTTP 410: the receiver is gone"
    if response.headers.get("webhook-delivery", "").strip().lower() == "abort-message":
        return DeliveryOutcome.STOPPED, f"HTTP {status}: the receiver aborted (webhook-delivery: abort-message)"
    if 300 <= status < 400:
        return DeliveryOutcome.RETRY, f"HTTP {status}: redirects are not followed"
    return DeliveryOutcome.RETRY, f"HTTP {status}"


def _name(exc: BaseException) -> str:
    return type(exc).__name__
