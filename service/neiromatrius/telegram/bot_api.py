"""The Telegram Bot API: a small client for the calls we make, and reply delivery through sendMessage.

Replies go out as plain text (no ``parse_mode``), so nothing a model writes can become markup, and
are split where Telegram's length limit requires. The bot token is part of every request URL, so no
error, log line or delivery record ever carries a URL from here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from ..core.models import DeliveryAttempt, DeliveryJob, DeliveryOutcome
from ..errors import TelegramError

logger = logging.getLogger(__name__)

MAX_MESSAGE_UNITS = 4096  # Telegram's limit for one message's text, in UTF-16 code units
# A 429 asking for a short pause is waited out within the attempt (the delivery lease covers it);
# a longer one ends the attempt, and the next is scheduled after retry_after.
MAX_INLINE_WAIT_SECONDS = 10.0
MAX_INLINE_WAITS = 3
LONG_POLL_SECONDS = 50


class TelegramBotApi:
    """``POST {api_url}/bot<token>/<method>`` with JSON, answering ``result`` or raising ``TelegramError``."""

    def __init__(self, http: httpx.AsyncClient, token: str, api_url: str, within: float = 15.0) -> None:
        self._http = http
        self._base = f"{api_url.rstrip('/')}/bot{token}"
        self._within = within

    async def call(self, method: str, params: dict[str, Any], within: float | None = None) -> Any:
        bound = self._within if within is None else within
        try:
            response = await self._http.post(f"{self._base}/{method}", json=params, timeout=bound)
        except httpx.TimeoutException:
            raise TelegramError(f"{method}: no answer within {bound:.0f}s", retryable=True) from None
        except httpx.HTTPError as exc:
            # httpx's messages may quote the URL, and the URL holds the token: name the type only.
            raise TelegramError(f"{method}: {type(exc).__name__}", retryable=True) from None
        return _result(method, response)

    async def send_message(self, chat_id: str, text: str) -> Any:
        # No parse_mode: the text is shown as written, so a reply cannot inject markup or links.
        params = {"chat_id": _chat(chat_id), "text": text, "link_preview_options": {"is_disabled": True}}
        return await self.call("sendMessage", params)

    async def get_updates(self, offset: int | None, wait: int = LONG_POLL_SECONDS) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"timeout": wait, "allowed_updates": ["message"]}
        if offset is not None:
            params["offset"] = offset
        result = await self.call("getUpdates", params, within=wait + 10)
        return [update for update in result if isinstance(update, dict)] if isinstance(result, list) else []


def _chat(chat_id: str) -> int | str:
    return int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id


def _result(method: str, response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("ok") is True:
        return body.get("result")
    description = body.get("description") if isinstance(body, dict) else None
    parameters = body.get("parameters") if isinstance(body, dict) else None
    retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
    status = response.status_code
    raise TelegramError(
        f"{method}: {status} {description or 'no description'}"[:300],
        status=status,
        retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
        retryable=status == 429 or status >= 500,
    )


def split_text(text: str, limit: int = MAX_MESSAGE_UNITS) -> list[str]:
    """Parts of at most ``limit`` UTF-16 units, cut at a line break or a space where one is near."""
    parts: list[str] = []
    rest = text
    while _units(rest) > limit:
        cut = _fitting(rest, limit)
        window = rest[:cut]
        at = max(window.rfind("\n"), window.rfind(" "))
        if at > cut // 2:
            cut = at + 1
        parts.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        parts.append(rest)
    return parts


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fitting(text: str, limit: int) -> int:
    """How many characters of ``text`` fit in ``limit`` UTF-16 units (never half a surrogate pair)."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


Sleep = Callable[[float], Awaitable[None]]


class TelegramDeliverer:
    """One delivery attempt: every part of the reply through sendMessage, in order."""

    def __init__(self, api: TelegramBotApi, sleep: Sleep = asyncio.sleep) -> None:
        self._api = api
        self._sleep = sleep

    async def deliver(self, job: DeliveryJob) -> DeliveryAttempt:
        started = time.perf_counter()
        parts = split_text(job.content)
        for index, part in enumerate(parts):
            error = await self._send(job.chat_id, part)
            if error is not None:
                # Parts already sent are sent again on the next attempt: Telegram has no idempotency key.
                sent = f" (after {index} of {len(parts)} parts)" if index else ""
                return _attempt(job, started, error, suffix=sent)
        return DeliveryAttempt(
            outcome=DeliveryOutcome.DELIVERED, webhook_id=job.reply_id, url=None, status_code=200,
            duration_ms=_ms(started),
        )  # fmt: skip

    async def _send(self, chat_id: str, text: str) -> TelegramError | None:
        for waits in range(MAX_INLINE_WAITS + 1):
            try:
                await self._api.send_message(chat_id, text)
                return None
            except TelegramError as exc:
                pause = exc.retry_after
                if pause is None or pause > MAX_INLINE_WAIT_SECONDS or waits == MAX_INLINE_WAITS:
                    return exc
                logger.info("telegram: 429, waiting %.0fs as asked", pause)
                await self._sleep(pause)
        raise AssertionError("unreachable")


def _attempt(job: DeliveryJob, started: float, error: TelegramError, suffix: str) -> DeliveryAttempt:
    return DeliveryAttempt(
        outcome=DeliveryOutcome.RETRY if error.retryable else DeliveryOutcome.FAILED,
        webhook_id=job.reply_id,
        url=None,
        status_code=error.status,
        error=error.message + suffix,
        duration_ms=_ms(started),
        retry_after=error.retry_after,
    )


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
