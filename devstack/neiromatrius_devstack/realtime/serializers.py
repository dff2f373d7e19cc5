"""Phoenix socket frames: V1 (JSON objects), V2 (JSON arrays) and the V2 binary user broadcasts.

Server frames are written as text by hand so that JSON rendered by Postgres (a change's record)
can be embedded verbatim: wrap such text in :class:`RawJSON` anywhere inside a payload.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

V1 = "1.0.0"
V2 = "2.0.0"

#: Binary frame kinds (supabase/realtime lib/realtime_web/socket/v2_serializer.ex).
USER_BROADCAST_PUSH = 3
USER_BROADCAST = 4
JSON_ENCODING = 1
BINARY_ENCODING = 0


class FrameError(ValueError):
    """A client frame that cannot be decoded."""


class RawJSON(str):
    """Text that already is JSON; :func:`dumps` inlines it as is."""

    __slots__ = ()


@dataclass(frozen=True)
class Frame:
    """One decoded client message. ``binary`` is set for a V2 binary broadcast's raw payload."""

    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: Any
    binary: bytes | None = None


def dumps(value: Any) -> str:
    """Compact JSON like ``json.dumps`` that keeps :class:`RawJSON` fragments verbatim: keys as
    ``json.dumps(key)`` writes them (ASCII), values as ``json.dumps(value, ensure_ascii=False)``."""
    if isinstance(value, RawJSON):
        return str(value)
    if isinstance(value, str):  # json's own encoders, without a JSONEncoder per value
        return encode_basestring(value)
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ",".join(f"{encode_basestring_ascii(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def negotiate(vsn: str | None) -> str | None:
    """The serializer for a ``vsn`` query parameter (Phoenix defaults to 1.0.0), or ``None``."""
    if vsn is None or vsn.startswith("1."):
        return V1
    if vsn.startswith("2."):
        return V2
    return None


def _ref(value: Any) -> str | None:
    return None if value is None else str(value)


def decode_text(vsn: str, text: str) -> Frame:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FrameError(f"invalid JSON: {exc}") from exc
    if vsn == V2:
        if not isinstance(data, list) or len(data) != 5:
            raise FrameError("a V2 frame is a five-element array")
        join_ref, ref, topic, event, payload = data
    else:
        if not isinstance(data, dict):
            raise FrameError("a V1 frame is a JSON object")
        join_ref, ref = data.get("join_ref"), data.get("ref")
        topic, event, payload = data.get("topic"), data.get("event"), data.get("payload")
    if not isinstance(topic, str) or not isinstance(event, str):
        raise FrameError("topic and event must be strings")
    return Frame(_ref(join_ref), _ref(ref), topic, event, payload if payload is not None else {})


def decode_binary(data: bytes) -> Frame:
    """Decode a V2 binary user broadcast push (kind 3) into a ``broadcast`` frame."""
    if len(data) < 7 or data[0] != USER_BROADCAST_PUSH:
        raise FrameError("only binary user broadcast pushes (kind 3) are accepted")
    sizes = data[1:6]
    encoding = data[6]
    pos = 7
    parts: list[str] = []
    for size in sizes:
        chunk = data[pos : pos + size]
        if len(chunk) != size:
            raise FrameError("truncated binary frame")
        parts.append(chunk.decode("utf-8"))
        pos += size
    join_ref, ref, topic, user_event, metadata = parts
    body = data[pos:]
    meta = json.loads(metadata) if metadata else {}
    payload: dict[str, Any] = {"type": "broadcast", "event": user_event}
    if isinstance(meta, dict) and meta:
        payload["meta"] = meta
    if encoding == JSON_ENCODING:
        payload["payload"] = json.loads(body) if body else None
        return Frame(join_ref or None, ref or None, topic, "broadcast", payload)
    return Frame(join_ref or None, ref or None, topic, "broadcast", payload, binary=bytes(body))


def encode(vsn: str, join_ref: str | None, ref: str | None, topic: str, event: str, payload: Any) -> str:
    """A server frame. V1 carries only topic, event, payload and ref, as Phoenix's V1 serializer does."""
    if vsn == V2:
        return dumps([join_ref, ref, topic, event, payload])
    return f'{{"topic":{json.dumps(topic)},"event":{json.dumps(event)},"payload":{dumps(payload)},"ref":{dumps(ref)}}}'


def encode_binary_broadcast(topic: str, event: str, payload: bytes, meta: dict[str, Any] | None = None) -> bytes:
    """A V2 binary user broadcast (kind 4) for a binary payload."""
    topic_b, event_b = topic.encode(), event.encode()
    meta_b = json.dumps(meta).encode() if meta else b""
    header = bytes([USER_BROADCAST, len(topic_b), len(event_b), len(meta_b), BINARY_ENCODING])
    return header + topic_b + event_b + meta_b + payload
