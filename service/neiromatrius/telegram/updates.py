"""Telegram updates as incoming messages: text and captions for the model, everything else for a human.

Only the ``message`` update is a customer writing to the business. Edits, reactions, callbacks and
membership changes carry nothing to answer, so they are acknowledged and left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..core.models import IncomingMessage
from ..errors import InputError

PLATFORM = "telegram"
# The message fields that carry content other than text; the first one present names the kind.
CONTENT_KINDS = (
    "photo",
    "video",
    "document",
    "audio",
    "voice",
    "video_note",
    "animation",
    "sticker",
    "location",
    "venue",
    "contact",
    "poll",
    "dice",
    "game",
    "story",
    "invoice",
)
# Postgres text and jsonb hold no NUL, and UTF-8 cannot carry a lone surrogate (JSON's "\\ud800" decodes to one).
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _integer(value: Any) -> int | None:
    """An integer as JSON Schema counts one: ``7`` or ``7.0`` (never ``true``)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def update_id(update: Mapping[str, Any]) -> int:
    value = _integer(update.get("update_id"))
    if value is None or value < 0:
        raise InputError("update_id", "must be a non-negative integer")
    return value


def incoming_from_update(update: Mapping[str, Any], max_chars: int) -> IncomingMessage | None:
    """The message to store for this update, or None when there is nothing to answer.

    ``update_id`` becomes the platform message id, so a re-sent update finds the first row.
    """
    number = update_id(update)
    message = update.get("message")
    if message is None:
        return None
    if not isinstance(message, dict):
        raise InputError("message", "must be an object")
    _check_storable(message)
    chat_id = _chat_id(message)
    sender = message.get("from")
    if isinstance(sender, dict) and sender.get("is_bot") is True:
        return None  # another bot (or ours, echoed in a group): answering it could loop
    sender_id = _integer(sender.get("id")) if isinstance(sender, dict) else None
    client = sender_id if sender_id is not None else chat_id
    text, reason = _content(message, max_chars)
    media = _kind(message)
    return IncomingMessage(
        client_id=f"telegram:{client}",
        platform=PLATFORM,
        chat_id=str(chat_id),
        content=text,
        platform_message_id=str(number),
        # Keep the original when the text alone does not hold everything the customer sent.
        payload=message if media is not None or reason is not None else None,
        handoff_reason=reason,
    )


def _check_storable(message: dict[str, Any]) -> None:
    """Refuse a message with a string the database cannot hold, before anything is written (Telegram sends none).

    Iterative, not recursive: the JSON parser allows nesting deeper than a recursive walk from here would.
    """
    pending: list[Any] = [message]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                raise InputError("message", "holds a NUL character or a lone surrogate, which cannot be stored")
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


def _chat_id(message: Mapping[str, Any]) -> int:
    chat = message.get("chat")
    chat_id = _integer(chat.get("id")) if isinstance(chat, dict) else None
    if chat_id is None:
        raise InputError("message.chat.id", "must be an integer")
    return chat_id


def _content(message: Mapping[str, Any], max_chars: int) -> tuple[str, str | None]:
    """The text the model reads and, when a human must take over instead, why."""
    text = message.get("text")
    if not isinstance(text, str) or not text.strip():
        text = message.get("caption")
    if isinstance(text, str) and text.strip():
        if len(text) > max_chars:
            return text[:max_chars], f"message longer than {max_chars} characters"
        return text, None
    kind = _kind(message) or "unknown"
    return f"[{kind}]", f"unsupported content: {kind}"


def _kind(message: Mapping[str, Any]) -> str | None:
    return next((kind for kind in CONTENT_KINDS if kind in message), None)
