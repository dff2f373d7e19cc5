"""SQL fragments: quoted identifiers, numbered parameters, fields, filters and ORDER BY terms.

Values always travel as ``text`` parameters and are cast to the column's type in SQL
(``$1::text::bigint``): PostgreSQL then parses them with the type's input function, so a bad
value fails with PostgREST's own error (``invalid input syntax for type bigint: "abc"``), and
the statement text stays the same for any value, so asyncpg's prepared-statement cache hits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .errors import RestError
from .filter_grammar import FTS_OPERATORS, IS_VALUES, OPERATORS
from .model import Condition, Field, Filter, Logic, OrderTerm

_CAST = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*$")
_TEXTUAL = frozenset({"text", None})


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{ident(schema)}.{ident(name)}"


@dataclass
class Params:
    values: list[object] = field(default_factory=list)

    def add(self, value: object, cast: str) -> str:
        self.values.append(value)
        return f"${len(self.values)}::{cast}"

    def text(self, value: str) -> str:
        return self.add(value, "text")

    def typed(self, value: str, type_name: str | None) -> str:
        """``value`` parsed as ``type_name`` by PostgreSQL (plain text when the type is unknown)."""
        if type_name in _TEXTUAL:
            return self.text(value)
        return f"{self.text(value)}::{type_name}"


@dataclass(frozen=True)
class Scope:
    """What unqualified names in filters and select items refer to: a FROM alias and its column types."""

    alias: str
    types: Mapping[str, str]

    @property
    def quoted(self) -> str:
        return ident(self.alias)


def render_field(scope: Scope, target: Field, params: Params) -> tuple[str, str | None]:
    """The SQL for ``col->a->>b`` and the type of its result, when known."""
    sql = f"{scope.quoted}.{ident(target.name)}"
    type_name = scope.types.get(target.name)
    for step in target.path:
        key = str(int(step.key)) if step.index else params.text(step.key)
        sql = f"{sql}{step.arrow}{key}"
        type_name = "text" if step.arrow == "->>" else (type_name if type_name in ("json", "jsonb") else "jsonb")
    return sql, type_name


def check_cast(cast: str) -> str:
    if not _CAST.match(cast):
        raise RestError(400, "PGRST100", f'"failed to parse select parameter (::{cast})" (line 1, column 1)', None)
    return cast


def render_conditions(conditions: Sequence[Condition], scope: Scope, params: Params) -> list[str]:
    return [render_condition(c, scope, params) for c in conditions]


def render_condition(cond: Condition, scope: Scope, params: Params) -> str:
    if isinstance(cond, Logic):
        joiner = " AND " if cond.op == "and" else " OR "
        inner = "(" + joiner.join(render_condition(c, scope, params) for c in cond.children) + ")"
        return f"NOT {inner}" if cond.negated else inner
    sql = _render_filter(cond, scope, params)
    return f"NOT ({sql})" if cond.expr.negated else sql


def _array_type(type_name: str | None) -> str:
    if type_name is None:
        return "text[]"
    return type_name if type_name.endswith("[]") else f"{type_name}[]"


def array_literal(values: Sequence[str]) -> str:
    """A PostgreSQL array literal with every element quoted, so commas and braces stay data."""
    if values == ("",):
        return "{}"
    escaped = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(escaped) + "}"


def _render_filter(flt: Filter, scope: Scope, params: Params) -> str:
    lhs, type_name = render_field(scope, flt.field, params)
    expr = flt.expr
    op = expr.op
    value = expr.value
    if op == "is":
        return f"{lhs} IS {IS_VALUES[str(value)]}"
    if op == "in":
        items = value if isinstance(value, tuple) else (value,)
        return f"{lhs} = ANY({params.typed(array_literal(items), _array_type(type_name))})"
    assert isinstance(value, str)
    if op in FTS_OPERATORS:
        language = f"{params.typed(expr.language, 'regconfig')}, " if expr.language else ""
        return f"{lhs} @@ {FTS_OPERATORS[op]}({language}{params.text(value)})"
    sql_op = OPERATORS[op]
    textual = op in ("like", "ilike", "match", "imatch")
    if op in ("like", "ilike"):
        value = value.replace("*", "%")
    if expr.quantifier is not None:
        array_type = "text[]" if textual else _array_type(type_name)
        return f"{lhs} {sql_op} {expr.quantifier.upper()}({params.typed(value, array_type)})"
    return f"{lhs} {sql_op} {params.text(value) if textual else params.typed(value, type_name)}"


def render_order(terms: Sequence[OrderTerm], scope: Scope, params: Params, embeds: Mapping[str, Scope]) -> str:
    parts = []
    for term in terms:
        target_scope = scope
        if term.relation is not None:
            found = embeds.get(term.relation)
            if found is None:
                raise RestError(
                    400, "PGRST108", f"'{term.relation}' is not an embedded resource in this request",
                    None, f"Verify that '{term.relation}' is included in the 'select' query parameter.",
                )  # fmt: skip
            target_scope = found
        sql, _ = render_field(target_scope, term.field, params)
        if term.direction:
            sql += " " + term.direction.upper()
        if term.nulls:
            sql += " NULLS " + term.nulls.upper()
        parts.append(sql)
    return ", ".join(parts)


def literal(text: str) -> str:
    """A string constant that reads the same whatever ``standard_conforming_strings`` says."""
    if "\x00" in text:
        raise RestError(400, "22021", 'invalid byte sequence for encoding "UTF8": 0x00')
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
