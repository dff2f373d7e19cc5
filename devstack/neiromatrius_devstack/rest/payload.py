"""The JSON body of a write or an RPC call, checked the way PostgREST's ``getPayload`` checks it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .catalog import Column, Relation
from .errors import RestError


@dataclass(frozen=True)
class Payload:
    text: str  # passed to PostgreSQL verbatim
    keys: tuple[str, ...]
    value: Any


def invalid_body(message: str = "Empty or invalid json") -> RestError:
    return RestError(400, "PGRST102", message)


def parse_payload(body: bytes, *, allow_empty: bool = False, uniform_keys: bool = True) -> Payload:
    """Without ``?columns=``, every object of an array must have the same keys."""
    try:
        text = body.decode("utf-8")
        value = json.loads(text) if text.strip() else None
    except (UnicodeDecodeError, ValueError) as exc:
        raise invalid_body() from exc
    if value is None:
        if allow_empty:
            return Payload("{}", (), {})
        raise invalid_body()
    if isinstance(value, dict):
        return Payload(text, tuple(value), value)
    if isinstance(value, list):
        if not all(isinstance(item, dict) for item in value):
            raise invalid_body("All object keys must match")
        keys: tuple[str, ...] = tuple(value[0]) if value else ()
        first = set(keys)
        if uniform_keys and any(set(item) != first for item in value[1:]):
            raise invalid_body("All object keys must match")
        return Payload(text, keys, value)
    raise invalid_body()


def missing_column(rel: Relation, name: str) -> RestError:
    return RestError(400, "PGRST204", f"Could not find the '{name}' column of '{rel.name}' in the schema cache")


def pick_columns(rel: Relation, names: tuple[str, ...]) -> list[Column] | str:
    """The named columns in order, or the first name the relation lacks."""
    picked: list[Column] = []
    for name in dict.fromkeys(names):  # ``columns=a,a`` names a once
        column = rel.columns.get(name)
        if column is None:
            return name
        picked.append(column)
    return picked
