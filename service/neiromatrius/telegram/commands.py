"""``neiromatrius telegram``: register the webhook, or poll for updates where there is no public URL.

Polling only stores updates, exactly as the webhook does; the listener answers them. An update's
offset is acknowledged only after its message is stored, so a crash re-reads it, and ``update_id``
makes the second store a no-op.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

from ..config import Settings
from ..core.backoff import Backoff
from ..core.ports import MessageIntake
from ..errors import InputError, PollingConflict, StoreError, TelegramError
from .bot_api import TelegramBotApi
from .updates import incoming_from_update, update_id

logger = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message"]
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0


def check_webhook_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise InputError("URL", "Telegram only delivers to https:// URLs")


async def set_webhook(api: TelegramBotApi, settings: Settings, url: str, drop_pending: bool = False) -> None:
    check_webhook_url(url)
    await api.call(
        "setWebhook",
        {
            "url": url,
            "secret_token": settings.telegram_secret(),
            "allowed_updates": ALLOWED_UPDATES,
            "drop_pending_updates": drop_pending,
        },
    )


async def webhook_info(api: TelegramBotApi) -> dict[str, Any]:
    info = await api.call("getWebhookInfo", {})
    return info if isinstance(info, dict) else {}


async def delete_webhook(api: TelegramBotApi) -> None:
    await api.call("deleteWebhook", {"drop_pending_updates": False})


class Poller:
    """Long polling: ``getUpdates`` → store each message → acknowledge by moving the offset."""

    def __init__(self, api: TelegramBotApi, store: MessageIntake, max_chars: int, wait: int = 50) -> None:
        self._api = api
        self._store = store
        self._max_chars = max_chars
        self._wait = wait
        self._offset: int | None = None
        self._stopping = asyncio.Event()
        self.stored = 0

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        backoff = Backoff(FIRST_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS)
        while not self._stopping.is_set():
            try:
                updates = await self._next_updates()
                if updates is None:
                    return
                for update in updates:
                    await self._store_update(update)
                backoff.reset()
            except (TelegramError, StoreError) as exc:
                if isinstance(exc, TelegramError) and exc.status == 409:
                    raise PollingConflict(exc.message) from None
                if not exc.retryable:
                    raise
                pause = backoff.next()
                logger.warning("telegram poll: %s; retrying in %.0fs", exc.message, pause)
                await self._pause(pause)

    async def _next_updates(self) -> list[dict[str, Any]] | None:
        """The next batch, or None when stopped while waiting for it."""
        fetch = asyncio.ensure_future(self._api.get_updates(self._offset, self._wait))
        stopping = asyncio.ensure_future(self._stopping.wait())
        done, _ = await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if fetch not in done:
            fetch.cancel()
            return None
        stopping.cancel()
        return fetch.result()

    async def _store_update(self, update: dict[str, Any]) -> None:
        number: int | None = None
        incoming = None
        try:
            number = update_id(update)
            incoming = incoming_from_update(update, self._max_chars)
        except InputError as exc:
            # A malformed update would block the offset forever; it is logged and skipped.
            logger.warning("telegram poll: skipping update %s: %s %s", number, exc.field, exc.message)
        if incoming is not None:
            intake = await self._store.intake(incoming)
            self.stored += int(intake.created)
            logger.info("telegram poll: update %s -> message=%s created=%s", number, intake.id, intake.created)
        if number is not None:
            self._offset = max(self._offset or 0, number + 1)

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass
