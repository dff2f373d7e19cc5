"""The intake request, parsed and checked into an ``IncomingMessage``; the answers' bodies as pydantic models.

The patterns here are the ones the OpenAPI document publishes, and the document's answer schemas are
generated from the body models below, so neither can drift from what the API does.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema
from starlette.datastructures import Headers

from ..config import Settings
from ..core.models import (
    MAX_WEBHOOK_URL_CHARS,
    WEBHOOK_URL_HEADER,
    Classification,
    IncomingMessage,
    MessageState,
    MessageView,
)
from ..errors import InputError, NotFound, UnsupportedMediaType
from ..web.json_body import json_object

PLATFORM = "X-Platform"
CHAT_ID = "X-Chat-ID"
IDEMPOTENCY_KEY = "Idempotency-Key"

MAX_ID_CHARS = 128
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[\x21-\x7E]+$"  # the URL guard checks the rest
PLATFORM_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
# Printable ASCII without leading or trailing spaces (HTTP trims those anyway).
CHAT_ID_PATTERN = r"^[\x21-\x7E]([\x20-\x7E]{0,126}[\x21-\x7E])?$"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7E][\x20-\x7E]{6,253}[\x21-\x7E]$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# No control characters at all (Unicode category Cc is exactly these two ranges).
LINE_PATTERN = r"^[^\u0000-\u001F\u007F-\u009F]*$"
# Control characters other than \t \n \r are refused, and at least one character must be visible.
_TEXT_CHAR = r"[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]"
TEXT_PATTERN = rf"^{_TEXT_CHAR}*[^\s\uFEFF\u0000-\u001F\u007F-\u009F]{_TEXT_CHAR}*$"

_SURROGATE = re.compile(r"[\ud800-\udfff]")  # a lone "\ud800" in JSON decodes to one; UTF-8 cannot carry it
_BLANK = re.compile(r"[\s\uFEFF]*")  # JSON Schema's \s also counts the BOM as a space
_TEXT_CONTROL = re.compile(r"[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]")


Uuid = Annotated[str, WithJsonSchema({"type": "string", "format": "uuid"})]
Availability = Literal["ok", "unavailable"]


class Accepted(BaseModel):
    id: Uuid
    conversation_id: str
    state: MessageState


class Message(Accepted):
    classification: Classification | None
    response: str | None
    model: str | None
    error: str | None = Field(default=None, description="Why a failed or handed-off message has no reply.")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Availability
    redis: Availability


class DatabaseHealth(BaseModel):
    status: Literal["ok", "error"]
    database: Literal["connected", "unavailable"]


@dataclass(frozen=True)
class IntakeRequest:
    message: IncomingMessage
    webhook_url: str


def parse_intake(headers: Headers, body: bytes, settings: Settings) -> IntakeRequest:
    """Check the headers, then the body; raise ``InputError`` naming the first thing at fault."""
    webhook_url = _header(
        headers,
        WEBHOOK_URL_HEADER,
        URL_PATTERN,
        MAX_WEBHOOK_URL_CHARS,
        f"an http(s) URL of at most {MAX_WEBHOOK_URL_CHARS} characters",
    )
    platform = _header(headers, PLATFORM, PLATFORM_PATTERN, 32, "1 to 32 letters, digits, '_' or '-'").lower()
    chat_id = _header(headers, CHAT_ID, CHAT_ID_PATTERN, MAX_ID_CHARS, "1 to 128 printable ASCII characters")
    keys = headers.getlist(IDEMPOTENCY_KEY)
    idempotency_key = keys[0] if keys else None
    if idempotency_key is not None and (len(keys) > 1 or not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, idempotency_key)):
        raise InputError(IDEMPOTENCY_KEY, f"{IDEMPOTENCY_KEY} must be sent once, 8 to 255 printable ASCII characters")
    _check_media_type(headers.getlist("content-type"))
    data = json_object(body)
    client_id = _identifier(data.get("client_id"), "client_id")
    content = _content(data.get("content"), settings.max_content_chars)
    message_id = data.get("message_id")
    platform_message_id = None if message_id is None else _identifier(message_id, "message_id")
    fingerprint = _fingerprint(client_id, platform, chat_id, content, webhook_url, platform_message_id)
    message = IncomingMessage(
        client_id=client_id,
        platform=platform,
        chat_id=chat_id,
        content=content,
        webhook_url=webhook_url,
        idempotency_key=idempotency_key,
        platform_message_id=platform_message_id,
        fingerprint=fingerprint,
    )
    return IntakeRequest(message=message, webhook_url=webhook_url)


def parse_message_id(value: str) -> str:
    """A message id in a path is a UUID; anything else names no message."""
    if not re.fullmatch(UUID_PATTERN, value):
        raise NotFound("No such message.")
    return value.lower()


def prefers_async(values: list[str]) -> bool:
    """Whether the ``Prefer`` headers (RFC 7240) ask for ``respond-async``."""
    for value in values:
        for preference in _split_unquoted(value, ","):
            name = re.split(r"[=;]", preference, maxsplit=1)[0]
            if name.strip().lower() == "respond-async":
                return True
    return False


def accepted_body(message_id: str, conversation_id: str, state: MessageState) -> dict[str, Any]:
    return Accepted(id=message_id, conversation_id=conversation_id, state=state).model_dump(mode="json")


def view_body(view: MessageView) -> dict[str, Any]:
    fields = view.model_dump(include={"id", "conversation_id", "state", "classification", "response", "model"})
    if view.state in (MessageState.FAILED, MessageState.HANDOFF) and view.response is None:
        fields["error"] = view.last_error  # set even when None: the key says "no reply, and here is why"
    return Message.model_validate(fields).model_dump(mode="json", exclude_unset=True)


def _header(headers: Headers, name: str, pattern: str, max_chars: int, expected: str) -> str:
    values = headers.getlist(name)
    if not values:
        raise InputError(name, f"the {name} header is required")
    if len(values) > 1:
        # Servers and proxies disagree on which copy counts: one copy, or the request is refused.
        raise InputError(name, f"the {name} header must be sent once")
    value = values[0]
    if len(value) > max_chars or not re.fullmatch(pattern, value):
        raise InputError(name, f"{name} must be {expected}")
    return value


def _check_media_type(values: list[str]) -> None:
    if not values:
        return
    if len(values) > 1:
        # Content-Type is a singleton field (RFC 9110 8.3); proxies disagree on which copy counts.
        raise UnsupportedMediaType("Content-Type", "the Content-Type header must be sent once")
    value = values[0]
    media_type, *params = (part.strip().lower() for part in value.split(";"))
    json_type = media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )
    charsets = [param.partition("=")[2].strip('"') for param in params if param.startswith("charset=")]
    if not json_type or any(charset not in ("utf-8", "utf8") for charset in charsets):
        raise UnsupportedMediaType("Content-Type", "the body must be JSON (application/json, UTF-8)")


def _identifier(value: Any, field: str) -> str:
    """1 to 128 characters, no control characters."""
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= MAX_ID_CHARS
        or not re.fullmatch(LINE_PATTERN, value)
        or _SURROGATE.search(value)
    ):
        raise InputError(field, f"{field} must be a string of 1 to 128 characters without control characters")
    return value


def _content(value: Any, max_chars: int) -> str:
    if not isinstance(value, str):
        raise InputError("content", "content is required and must be a string")
    if _BLANK.fullmatch(value):
        raise InputError("content", "content must not be empty or only whitespace")
    if len(value) > max_chars:
        raise InputError("content", f"content must be at most {max_chars} characters")
    if _TEXT_CONTROL.search(value) or _SURROGATE.search(value):
        raise InputError("content", "content must not contain control characters other than tab and newlines")
    return value


def _fingerprint(*parts: str | None) -> str:
    canonical = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _split_unquoted(text: str, separator: str) -> list[str]:
    """Split at ``separator`` except inside double-quoted strings (which may hold ``\\"``)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts
