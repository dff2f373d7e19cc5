"""One query per change: Postgres renders the values as JSON and evaluates the bindings' filters.

Values arrive as the server's text output. Each is cast back to its column type and rendered with
``to_jsonb(...)::text``, so numbers, timestamps and jsonb look exactly as PostgREST shows them.
Filters compare ``'<value>'::type <op> '<filter value>'::type`` as Realtime's ``check_equality_op``
does; a NULL result, or a filter column the WAL record lacks, does not match. Filters whose outcome
is certain without Postgres (:func:`surely_fails`) let the dispatcher skip the query for bindings
they reject; the query stays the only judge of a match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from .catalog import ColumnInfo, Connection, TableInfo
from .changes import Change
from .pgoutput import Unchanged, Value
from .subscriptions import Filter

_COMPARISONS = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_TEXT_MATCH = {"like": "like", "ilike": "ilike", "match": "~", "imatch": "~*"}
IS_VALUES = {"null": "null", "true": "true", "false": "false", "unknown": "unknown"}


@dataclass(frozen=True)
class Rendered:
    new: dict[str, str]  # column -> JSON text, for the values the WAL record carries
    old: dict[str, str]
    matches: dict[Filter, bool]


def filter_sql(f: Filter, column_sql: str, sql_type: str, param: int | None) -> str:
    """The boolean SQL for one filter; ``param`` is the placeholder number of its value."""
    if f.op in _COMPARISONS:
        expr = f"{column_sql} {_COMPARISONS[f.op]} ${param}::text::{sql_type}"
    elif f.op == "in":
        expr = f"{column_sql} = any(${param}::text::{sql_type}[])"
    elif f.op in _TEXT_MATCH:
        expr = f"{column_sql}::text {_TEXT_MATCH[f.op]} ${param}::text"
    elif f.op == "is":
        expr = f"{column_sql} is {IS_VALUES[f.value.lower()]}"
    elif f.op == "isdistinct":
        expr = f"{column_sql} is distinct from ${param}::text::{sql_type}"
    else:
        raise ValueError(f"unknown filter operator {f.op}")
    return f"coalesce(not ({expr}), false)" if f.negate else f"coalesce({expr}, false)"


class _Query:
    def __init__(self) -> None:
        self.params: list[str | None] = []
        self.outputs: list[str] = []

    def param(self, value: str | None) -> int:
        self.params.append(value)
        return len(self.params)

    def output(self, sql: str) -> int:
        self.outputs.append(sql)
        return len(self.outputs) - 1


def present(change: Change, row: tuple[Value, ...] | None, key_only: bool) -> dict[str, str | None]:
    """The values a WAL tuple really carries: no unchanged TOAST, no non-key column of a key tuple."""
    if row is None:
        return {}
    out: dict[str, str | None] = {}
    for column, value in zip(change.relation.columns, row, strict=True):
        if isinstance(value, Unchanged) or (key_only and not column.is_key):
            continue
        out[column.name] = value
    return out


#: An ``in`` list whose array literal splits on commas alone: no quotes, escapes, spaces, braces or NULL.
_PLAIN_LIST = re.compile(r"\{[A-Za-z0-9_.:@-]+(?:,[A-Za-z0-9_.:@-]+)*\}")


def filter_values(change: Change) -> dict[str, str | None]:
    """The values the filters of a change are evaluated on, as :func:`render` picks them."""
    if change.action == "DELETE":
        return present(change, change.old, key_only=not change.old_full)
    return present(change, change.new, key_only=False)


def may_pass(filters: Iterable[Filter], values: dict[str, str | None], table: TableInfo) -> bool:
    """False when one of a binding's filters surely fails on these values (:func:`surely_fails`)."""
    return not any(surely_fails(f, values, table.column(f.column)) for f in filters)


def surely_fails(f: Filter, values: dict[str, str | None], column: ColumnInfo | None) -> bool:
    """True when :func:`render`'s SQL would certainly find ``f`` false, so the query can be spared; False
    when only the SQL can tell. Decided here: a column absent from the record, a NULL under any operator
    but ``is``/``isdistinct``, and ``eq``/``neq``/``in`` on a ``text`` column (plain string equality:
    both sides are text parameters, compared under the database's deterministic default collation)."""
    if column is None or f.column not in values:
        return True
    if f.op in ("is", "isdistinct"):
        return False
    value = values[f.column]
    if value is None:
        return True  # the comparison is NULL, and so is its negation: coalesce(…, false)
    if column.sql_type != "text":
        return False
    if f.op in ("eq", "neq"):
        holds = (value == f.value) == (f.op == "eq")
    elif f.op == "in" and _PLAIN_LIST.fullmatch(f.value):
        items = f.value[1:-1].split(",")
        if any(item.lower() == "null" for item in items):
            return False
        holds = value in items
    else:
        return False
    return holds == f.negate


async def render(pool: asyncpg.Pool, change: Change, table: TableInfo, filters: set[Filter]) -> Rendered:
    new = present(change, change.new, key_only=False)
    old = present(change, change.old, key_only=not change.old_full)
    query = _Query()
    slots: dict[tuple[str, str], tuple[int, int]] = {}  # (side, column) -> (param, output)
    for side, values in (("new", new), ("old", old)):
        for name, value in values.items():
            column = table.column(name)
            if column is None:
                continue
            param = query.param(value)
            slots[(side, name)] = (param, query.output(f"to_jsonb(${param}::text::{column.sql_type})::text"))
    basis = "old" if change.action == "DELETE" else "new"
    matches: dict[Filter, bool] = {}
    filter_outputs: dict[Filter, int] = {}
    for f in filters:
        column = table.column(f.column)
        slot = slots.get((basis, f.column))
        if column is None or slot is None:
            matches[f] = False
            continue
        value_sql = f"${slot[0]}::text::{column.sql_type}"
        value_param = None if f.op == "is" else query.param(f.value)
        filter_outputs[f] = query.output(filter_sql(f, value_sql, column.sql_type, value_param))
    row = await pool.fetchrow(f"select {', '.join(query.outputs)}", *query.params) if query.outputs else None
    result: dict[str, dict[str, str]] = {"new": {}, "old": {}}
    for (side, name), (_param, index) in slots.items():
        assert row is not None
        result[side][name] = row[index] if row[index] is not None else "null"
    for f, index in filter_outputs.items():
        assert row is not None
        matches[f] = bool(row[index])
    return Rendered(result["new"], result["old"], matches)


async def validate_filter(conn: Connection, table: TableInfo, f: Filter) -> str | None:
    """Why a filter cannot be used on ``table`` (Realtime refuses it when subscribing), or None."""
    column = table.column(f.column)
    if column is None:
        return f"invalid column for filter {f.column}"
    if f.op == "is":
        return None if f.value.lower() in IS_VALUES else f"invalid value for `is` filter: {f.value}"
    if f.op in ("match", "imatch"):
        check = "select ''::text ~ $1::text"
    elif f.op in _TEXT_MATCH:
        return None
    else:
        check = f"select $1::text::{column.sql_type}{'[]' if f.op == 'in' else ''}"
    try:
        await conn.fetchval(check, f.value)
    except asyncpg.PostgresError as exc:
        return str(exc)
    return None
