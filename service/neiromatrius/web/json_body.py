"""A request body read as one strict JSON object: UTF-8, RFC 8259 numbers, no repeated keys."""

from __future__ import annotations

import json
from typing import Any

from ..errors import InputError, MalformedBody


def _not_json(name: str) -> Any:
    # Python reads NaN and Infinity; JSON (RFC 8259) and every other parser of this body do not.
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on a repeated key (first or last wins), so a proxy and this API could read different
    # requests from one body; RFC 7493 (I-JSON) forbids repeats, and so do we.
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise MalformedBody("body", f"the body must not repeat a key ({json.dumps(key)[:64]} appears twice)")
        data[key] = value
    return data


def json_object(body: bytes) -> dict[str, Any]:
    try:
        # Decoding first: json.loads(bytes) would also accept UTF-16 and UTF-32.
        data = json.loads(body.decode("utf-8"), parse_constant=_not_json, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError):
        raise MalformedBody("body", "the body must be valid JSON encoded as UTF-8") from None
    if not isinstance(data, dict):
        raise InputError("body", "the body must be a JSON object")
    return data
