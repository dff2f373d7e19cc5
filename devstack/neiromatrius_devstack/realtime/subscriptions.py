"""``postgres_changes`` bindings: parsing them as Realtime does, their ids, and who listens to what.

Parsing follows supabase/realtime ``lib/extensions/postgres_cdc_rls/subscriptions.ex``
(``parse_subscription_params``), error texts included.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

OPERATORS = frozenset(
    {"eq", "neq", "lt", "lte", "gt", "gte", "in", "like", "ilike", "is", "match", "imatch", "isdistinct"}
)
ACTIONS = frozenset({"INSERT", "UPDATE", "DELETE"})


class SubscriptionError(Exception):
    """A binding Realtime would refuse; the message is Realtime's, for the ``system`` push."""


@dataclass(frozen=True)
class Filter:
    column: str
    op: str
    value: str  # ``in`` values are already the array literal ``{a,b}``
    negate: bool = False


@dataclass(frozen=True)
class Binding:
    id: int
    action: str  # "*" or INSERT / UPDATE / DELETE
    schema: str
    table: str
    filters: tuple[Filter, ...] = ()
    select: tuple[str, ...] | None = None

    def matches(self, schema: str, table: str, action: str) -> bool:
        return self.schema in ("*", schema) and self.table in ("*", table) and self.action in ("*", action)

    def describe(self) -> str:
        """Realtime's ``params_to_log`` rendering, used in its error messages."""
        filters = ", ".join(f'{{"{f.column}", "{f.op}", "{f.value}", {str(f.negate).lower()}}}' for f in self.filters)
        select = "nil" if self.select is None else json.dumps(list(self.select))
        return (
            f"event: {self.action}, schema: {self.schema}, table: {self.table}, filters: [{filters}], select: {select}"
        )


def echo(params: Any) -> Any:
    """A binding as the join reply repeats it: verbatim, plus its ``id``."""
    return {**params, "id": binding_id(params)} if isinstance(params, dict) else params


def binding_id(params: dict[str, Any]) -> int:
    """A stable, non-zero integer per binding (Realtime uses ``:erlang.phash2``; clients only echo it)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return zlib.crc32(canonical.encode()) % (2**27 - 1) + 1


def parse_binding(params: Any) -> Binding:
    if not isinstance(params, dict):
        raise SubscriptionError(
            "No subscription params provided. Please provide at least a `schema` or `table` to subscribe to: "
            f"{params!r}"
        )
    action = _action(params.get("event"))
    select = _select(params)
    schema, table, filt = params.get("schema"), params.get("table"), params.get("filter")
    filters: tuple[Filter, ...] = ()
    if isinstance(schema, str) and isinstance(table, str) and isinstance(filt, str):
        filters = tuple(parse_filters(filt))
    elif isinstance(schema, str) and isinstance(table, str) and "filter" not in params:
        pass
    elif isinstance(schema, str) and "table" not in params and "filter" not in params:
        table = "*"
    elif isinstance(table, str) and "schema" not in params and "filter" not in params:
        schema = "public"
    else:
        raise SubscriptionError(
            "No subscription params provided. Please provide at least a `schema` or `table` to subscribe to: "
            f"{params!r}"
        )
    assert isinstance(schema, str) and isinstance(table, str)
    if select is not None and "*" in (schema, table):
        raise SubscriptionError(
            "Column selection is not supported for wildcard subscriptions. Provide an explicit schema and table name."
        )
    return Binding(binding_id(params), action, schema, table, filters, select)


def _action(event: Any) -> str:
    if isinstance(event, str) and event.upper() in ACTIONS:
        return event.upper()
    return "*"


def _select(params: dict[str, Any]) -> tuple[str, ...] | None:
    cols = params.get("select")
    if isinstance(cols, str):
        raise SubscriptionError(
            'Error parsing `select` params: expected a list of column name strings, e.g. select: ["col1", "col2"]'
        )
    if isinstance(cols, list):
        names = tuple(c for c in cols if isinstance(c, str))
        return names or None
    return None


def parse_filters(text: str) -> list[Filter]:
    """``col=op.value[,col2=op.value…]`` with an optional ``not.``; ``in.(a,b)`` becomes ``{a,b}``."""
    if not text.strip():
        return []
    try:
        return [_segment(segment) for segment in _split_top_level(text.strip())]
    except SubscriptionError as exc:
        raise SubscriptionError(f"Error parsing `filter` params: {exc}") from None


def _split_top_level(text: str) -> list[str]:
    parts, current, depth, quoted, prev, i = [], "", 0, False, "", 0
    while i < len(text):
        char = text[i]
        if quoted:
            if char == "\\" and i + 1 < len(text):
                current += text[i : i + 2]
                i += 2
                continue
            quoted = char != '"'
        elif char == '"' and prev in (".", "(", ","):
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append(current)
            current, prev, i = "", "", i + 1
            continue
        current += char
        prev = char
        i += 1
    parts.append(current)
    return parts


def _segment(segment: str) -> Filter:
    trimmed = segment.strip()
    if not trimmed:
        raise SubscriptionError("filter must not contain empty segments (check for extra commas)")
    if "=" not in trimmed:
        raise SubscriptionError(json.dumps([trimmed]))
    column, rest = trimmed.split("=", 1)
    negate = rest.startswith("not.")
    if negate:
        rest = rest[4:]
    if "." not in rest:
        raise SubscriptionError(json.dumps([rest]))
    op, value = rest.split(".", 1)
    if op not in OPERATORS:
        raise SubscriptionError(json.dumps([op, value]))
    if op == "in":
        if not (len(value) >= 2 and value.startswith("(") and value.endswith(")")):
            raise SubscriptionError("`in` filter value must be wrapped by parentheses")
        return Filter(column, op, "{" + value[1:-1] + "}", negate)
    return Filter(column, op, _unquote(value), negate)


def _unquote(value: str) -> str:
    if not value.startswith('"'):
        return value
    out, i = "", 1
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            out += value[i + 1]
            i += 2
            continue
        if char == '"':
            return out if i == len(value) - 1 else value
        out += char
        i += 1
    return value


class Listener(Protocol):
    """The side of a channel the dispatcher needs."""

    topic: str
    claims: dict[str, Any]
    since_lsn: int

    def deliver(self, event: str, payload: Any) -> None: ...


@dataclass
class Subscription:
    listener: Listener
    bindings: tuple[Binding, ...]


@dataclass
class Registry:
    """Every live ``postgres_changes`` subscription, one per joined channel."""

    _subscriptions: dict[int, Subscription] = field(default_factory=dict)
    #: (schema, table, action) -> whether any binding matches it, until the next add or remove: most
    #: changes are of tables nobody listens to, and are then passed over without a look at every binding.
    _wanted: dict[tuple[str, str, str], bool] = field(default_factory=dict)

    def add(self, subscription: Subscription) -> None:
        self._subscriptions[id(subscription.listener)] = subscription
        self._wanted.clear()

    def remove(self, listener: Listener) -> None:
        if self._subscriptions.pop(id(listener), None) is not None:
            self._wanted.clear()

    def wants(self, schema: str, table: str, action: str) -> bool:
        key = (schema, table, action)
        wanted = self._wanted.get(key)
        if wanted is None:
            wanted = self._wanted[key] = any(
                b.matches(schema, table, action) for s in self._subscriptions.values() for b in s.bindings
            )
        return wanted

    def matching(self, schema: str, table: str, action: str) -> Iterator[tuple[Listener, list[Binding]]]:
        if not self.wants(schema, table, action):
            return
        for subscription in list(self._subscriptions.values()):
            bindings = [b for b in subscription.bindings if b.matches(schema, table, action)]
            if bindings:
                yield subscription.listener, bindings

    def __len__(self) -> int:
        return len(self._subscriptions)

    def __contains__(self, listener: object) -> bool:
        return id(listener) in self._subscriptions
