"""``POST /api/telegram/webhook``: Telegram's updates, stored before they are acknowledged.

Telegram re-sends an update until it gets a 2xx, and gives up after a while, so the order is: check
the secret, store (idempotently, on ``update_id``), then answer 200 without waiting for the model.
A store failure answers 503, and Telegram's retry finds the message stored once.
"""

from __future__ import annotations

import hmac
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..config import Settings
from ..core.ports import MessageIntake
from ..errors import Unauthorized
from ..web.json_body import json_object
from .updates import incoming_from_update, update_id

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class TelegramWebhook:
    def __init__(self, settings: Settings, store: MessageIntake) -> None:
        self.secret = settings.telegram_secret().encode()
        self.max_chars = settings.max_content_chars
        self.store = store

    async def receive(self, request: Request) -> Response:
        body = await request.body()  # the size limit applies before anything else
        # Constant time: Telegram does not sign updates, this token is the only proof of origin.
        if not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), self.secret):
            raise Unauthorized(SECRET_HEADER, "the secret token is missing or wrong")
        update = json_object(body)
        incoming = incoming_from_update(update, self.max_chars)
        if incoming is None:
            logger.info("telegram: update %d has nothing to answer; acknowledged", update_id(update))
            return JSONResponse({"ok": True})
        intake = await self.store.intake(incoming)
        request.state.message_id = intake.id
        if intake.created and incoming.handoff_reason is not None:
            logger.info("telegram: message=%s stored for a human: %s", intake.id, incoming.handoff_reason)
        return JSONResponse({"ok": True})
