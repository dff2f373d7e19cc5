"""The schema cache: relations, columns, keys, foreign keys and functions of the exposed schemas."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

QualifiedName = tuple[str, str]


@dataclass(frozen=True)
class Column:
    """A column as writes and filters need it.

    ``type`` keeps the modifier (``character(2)``, ``numeric(5,2)``): a JSON body's values are read
    as the column would store them. ``filter_type`` is the domain's base type with no modifier,
    spelled so the parser adds none (``bpchar``, ``"bit"``): PostgREST sends filter values as
    untyped literals, which PostgreSQL reads that way, so ``iso=eq.DZ`` on a ``char(2)`` column is
    never cut to ``char(1)`` and ``eq.1.005`` on a ``numeric(5,2)`` is never rounded.
    """

    name: str
    type: str  # ``format_type`` with typmod, schema-qualified unless in pg_catalog
    default: str | None = None  # the DEFAULT expression (the identity sequence's ``nextval`` included)
    filter_type: str = ""

    @property
    def value_type(self) -> str:
        return self.filter_type or self.type


@dataclass(frozen=True)
class Relation:
    schema: str
    name: str
    kind: str  # pg_class.relkind: r table, v view, m matview, f foreign, p partitioned
    columns: dict[str, Column]
    pk: tuple[str, ...] = ()
    uniques: tuple[frozenset[str], ...] = ()

    @property
    def qualified(self) -> QualifiedName:
        return (self.schema, self.name)

    @property
    def filter_types(self) -> dict[str, str]:
        return {c.name: c.value_type for c in self.columns.values()}

    def is_unique(self, columns: tuple[str, ...]) -> bool:
        wanted = frozenset(columns)
        return any(key <= wanted for key in self.uniques)


@dataclass(frozen=True)
class ForeignKey:
    name: str
    source: QualifiedName
    columns: tuple[str, ...]
    target: QualifiedName
    target_columns: tuple[str, ...]


@dataclass(frozen=True)
class Param:
    name: str  # '' when unnamed
    type: str
    has_default: bool = False
    variadic: bool = False


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    params: tuple[Param, ...]
    returns_set: bool
    shape: Literal["scalar", "composite", "void"]
    return_type: str
    volatility: Literal["v", "s", "i"]
    #: The result's columns when it is a row type (for filters, order and select on the result).
    columns: dict[str, Column] = field(default_factory=dict)
    #: The table or view whose row type it returns, so ``select`` can embed from it.
    relation: QualifiedName | None = None

    @property
    def required(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params if not p.has_default)

    @property
    def single_json_param(self) -> bool:
        """One unnamed json/jsonb parameter: it receives the whole request body."""
        return len(self.params) == 1 and self.params[0].name == "" and self.params[0].type in ("json", "jsonb")


@dataclass
class Catalog:
    relations: dict[QualifiedName, Relation] = field(default_factory=dict)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    functions: dict[QualifiedName, list[Function]] = field(default_factory=dict)
    #: Per role, the user-settable ``ALTER ROLE … SET`` values PostgREST applies after switching role.
    role_settings: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    timezones: frozenset[str] = frozenset()
    #: What requests derive from this catalogue alone (an RPC's chosen overload and call SQL); a reload
    #: brings a new catalogue, so nothing here outlives the schema it was derived from.
    derived: dict[object, object] = field(default_factory=dict, compare=False, repr=False)

    def relation(self, schema: str, name: str) -> Relation | None:
        return self.relations.get((schema, name))

    def column_types(self, schema: str, name: str) -> dict[str, str]:
        rel = self.relations.get((schema, name))
        return rel.filter_types if rel else {}

    def fks_from(self, source: QualifiedName) -> Iterator[ForeignKey]:
        return (fk for fk in self.foreign_keys if fk.source == source)

    def fks_to(self, target: QualifiedName) -> Iterator[ForeignKey]:
        return (fk for fk in self.foreign_keys if fk.target == target)

    def names_in(self, schema: str) -> list[str]:
        return [name for (s, name) in self.relations if s == schema]
