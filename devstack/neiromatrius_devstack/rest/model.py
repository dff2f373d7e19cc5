"""The parsed query string as plain data: what to select, filter, order and cut (no SQL here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: An embed path from the root: ``()`` is the root, ``("comments",)`` an embedded resource.
EmbedPath = tuple[str, ...]


@dataclass(frozen=True)
class JsonStep:
    arrow: Literal["->", "->>"]
    key: str
    index: bool = False  # ``->0`` reads an array element, ``->a`` an object key


@dataclass(frozen=True)
class Field:
    name: str
    path: tuple[JsonStep, ...] = ()

    @property
    def output_name(self) -> str:
        """PostgREST names ``data->a->>b`` after its last key."""
        return self.path[-1].key if self.path else self.name


@dataclass(frozen=True)
class SelectField:
    field: Field
    alias: str | None = None
    cast: str | None = None  # on the column, before any aggregate
    aggregate: str | None = None  # ``count``, ``sum``, ``avg``, ``min``, ``max`` (``count()`` has field ``*``)
    aggregate_cast: str | None = None  # ``col.sum()::int``: on the aggregate's result


@dataclass(frozen=True)
class SelectEmbed:
    relation: str
    children: tuple[SelectItem, ...]
    alias: str | None = None
    hint: str | None = None
    join: Literal["inner", "left"] | None = None
    spread: bool = False

    @property
    def label(self) -> str:
        return self.alias or self.relation


SelectItem = SelectField | SelectEmbed

STAR: tuple[SelectItem, ...] = (SelectField(Field("*")),)


@dataclass(frozen=True)
class OpExpr:
    """``[not.]op[(any|all)|(lang)].value``; ``in`` keeps a list, every other operator a string."""

    op: str
    value: str | tuple[str, ...]
    negated: bool = False
    quantifier: Literal["any", "all"] | None = None
    language: str | None = None


@dataclass(frozen=True)
class Filter:
    field: Field
    expr: OpExpr


@dataclass(frozen=True)
class Logic:
    op: Literal["and", "or"]
    children: tuple[Condition, ...]
    negated: bool = False


Condition = Filter | Logic


@dataclass(frozen=True)
class OrderTerm:
    field: Field
    relation: str | None = None  # ``order=rel(col)``: a to-one embed's column
    direction: Literal["asc", "desc"] | None = None
    nulls: Literal["first", "last"] | None = None


@dataclass(frozen=True)
class Range:
    """Rows ``offset .. offset+limit-1``; ``limit=None`` means unbounded."""

    offset: int = 0
    limit: int | None = None

    def intersect(self, other: Range) -> Range:
        offset = max(self.offset, other.offset)
        ends = [r.offset + r.limit for r in (self, other) if r.limit is not None]
        if not ends:
            return Range(offset, None)
        return Range(offset, max(0, min(ends) - offset))

    def capped(self, max_rows: int) -> Range:
        limit = max_rows if self.limit is None else min(self.limit, max_rows)
        return Range(self.offset, limit)


@dataclass
class QueryParams:
    select: tuple[SelectItem, ...] = STAR
    filters: dict[EmbedPath, list[Condition]] = field(default_factory=dict)
    orders: dict[EmbedPath, list[OrderTerm]] = field(default_factory=dict)
    ranges: dict[EmbedPath, Range] = field(default_factory=dict)
    columns: tuple[str, ...] | None = None
    on_conflict: tuple[str, ...] | None = None
    #: ``key=value`` pairs without an operator: RPC arguments on GET, a parse error on tables.
    rpc_args: list[tuple[str, str]] = field(default_factory=list)
    canonical: str = ""
    has_select: bool = False

    def conditions(self, path: EmbedPath = ()) -> list[Condition]:
        return self.filters.get(path, [])

    def range(self, path: EmbedPath = ()) -> Range:
        return self.ranges.get(path, Range())
