"""Resolve ``select=rel(…)`` to a foreign-key relationship, with PostgREST's PGRST200/201 errors."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from .catalog import Catalog, ForeignKey, QualifiedName, Relation
from .errors import RestError

Cardinality = Literal["many-to-one", "one-to-many", "one-to-one", "many-to-many"]


@dataclass(frozen=True)
class Junction:
    relation: Relation
    to_source: ForeignKey  # junction → parent
    to_target: ForeignKey  # junction → embedded


@dataclass(frozen=True)
class Relationship:
    source: Relation
    target: Relation
    cardinality: Cardinality
    fk: ForeignKey
    #: (parent column, embedded column) pairs for the join; unused for many-to-many.
    pairs: tuple[tuple[str, str], ...] = ()
    junction: Junction | None = None

    @property
    def to_one(self) -> bool:
        return self.cardinality in ("many-to-one", "one-to-one")

    def hint_names(self) -> set[str]:
        """What ``!hint`` may name (Plan.hs ``findRel``): the constraint, or its one column on either side."""
        if self.junction is not None:
            return {self.junction.relation.name, self.junction.to_source.name, self.junction.to_target.name}
        names = {self.fk.name}
        if len(self.fk.columns) == 1:
            names |= {self.fk.columns[0], self.fk.target_columns[0]}
        return names

    @property
    def is_self(self) -> bool:
        return self.fk.source == self.fk.target

    def describe(self) -> dict[str, str]:
        """One entry of PGRST201's ``details``."""

        def cols(names: tuple[str, ...]) -> str:
            return "(" + ", ".join(names) + ")"

        text: str
        if self.junction is not None:
            j = self.junction
            text = f"{j.relation.name} using {j.to_source.name}{cols(j.to_source.columns)} and {j.to_target.name}{cols(j.to_target.columns)}"  # noqa: E501
        else:
            parent_cols = tuple(p for p, _ in self.pairs)
            child_cols = tuple(c for _, c in self.pairs)
            text = (
                f"{self.fk.name} using {self.source.name}{cols(parent_cols)} and {self.target.name}{cols(child_cols)}"
            )
        return {
            "cardinality": self.cardinality,
            "embedding": f"{self.source.name} with {self.target.name}",
            "relationship": text,
        }

    def hint_label(self) -> str:
        return self.junction.relation.name if self.junction is not None else self.fk.name


def resolve(catalog: Catalog, source: Relation, name: str, hint: str | None) -> Relationship:
    candidates = _candidates(catalog, source, name)
    if hint is not None:
        candidates = [r for r in candidates if hint in r.hint_names()]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise _no_relationship(catalog, source, name, hint)
    chosen = _self_reference(candidates)
    if chosen is not None:
        return chosen
    raise RestError(
        300, "PGRST201",
        f"Could not embed because more than one relationship was found for '{source.name}' and '{name}'",
        [r.describe() for r in candidates],
        f"Try changing '{name}' to one of the following: "
        + ", ".join(f"'{r.target.name}!{r.hint_label()}'" for r in candidates)
        + ". Find the desired relationship in the 'details' key.",
    )  # fmt: skip


def _self_reference(candidates: list[Relationship]) -> Relationship | None:
    """A self-referencing foreign key is found both ways; PostgREST takes the one-to-many (the children).

    The many-to-one (the parent) is reached with the FK column or the constraint as a hint.
    """
    if len(candidates) != 2:
        return None
    first, second = candidates
    if not (first.is_self and second.is_self and first.fk == second.fk):
        return None
    kinds = {first.cardinality: first, second.cardinality: second}
    return kinds.get("one-to-many") if set(kinds) == {"one-to-many", "many-to-one"} else None


def _candidates(catalog: Catalog, source: Relation, name: str) -> list[Relationship]:
    target = catalog.relation(source.schema, name)
    found: list[Relationship] = []
    if target is not None:
        found += _direct(catalog, source, target)
        found += _many_to_many(catalog, source, target)
    # ``select=*,user_id(*)``: a one-column FK names its parent; ``select=*,todos_user_id_fkey(*)``: a
    # constraint names the other end, whichever way it points.
    for fk in catalog.fks_from(source.qualified):
        if name == fk.name or (len(fk.columns) == 1 and name == fk.columns[0]):
            other = catalog.relation(*fk.target)
            if other is not None:
                found.append(_forward(source, other, fk))
    for fk in catalog.fks_to(source.qualified):
        if name == fk.name:
            other = catalog.relation(*fk.source)
            if other is not None:
                found.append(_backward(source, other, fk))
    unique: dict[tuple[str, QualifiedName, str, QualifiedName], Relationship] = {}
    for rel in found:
        key = (rel.cardinality, rel.target.qualified, rel.fk.name, rel.fk.source)
        unique.setdefault(key, rel)
    return list(unique.values())


def _forward(source: Relation, target: Relation, fk: ForeignKey) -> Relationship:
    one: Cardinality = "one-to-one" if source.is_unique(fk.columns) else "many-to-one"
    return Relationship(source, target, one, fk, tuple(zip(fk.columns, fk.target_columns, strict=True)))


def _backward(source: Relation, target: Relation, fk: ForeignKey) -> Relationship:
    card: Cardinality = "one-to-one" if target.is_unique(fk.columns) else "one-to-many"
    return Relationship(source, target, card, fk, tuple(zip(fk.target_columns, fk.columns, strict=True)))


def _direct(catalog: Catalog, source: Relation, target: Relation) -> list[Relationship]:
    found = [_forward(source, target, fk) for fk in catalog.fks_from(source.qualified) if fk.target == target.qualified]
    found += [_backward(source, target, fk) for fk in catalog.fks_to(source.qualified) if fk.source == target.qualified]
    return found


def _many_to_many(catalog: Catalog, source: Relation, target: Relation) -> list[Relationship]:
    found: list[Relationship] = []
    for junction in catalog.relations.values():
        if junction.schema != source.schema or junction.qualified in (source.qualified, target.qualified):
            continue
        pk = frozenset(junction.pk)
        to_source = [fk for fk in catalog.fks_from(junction.qualified) if fk.target == source.qualified]
        to_target = [fk for fk in catalog.fks_from(junction.qualified) if fk.target == target.qualified]
        for a in to_source:
            for b in to_target:
                if a is not b and set(a.columns) <= pk and set(b.columns) <= pk:
                    found.append(Relationship(source, target, "many-to-many", a, junction=Junction(junction, a, b)))
    return found


def _no_relationship(catalog: Catalog, source: Relation, name: str, hint: str | None) -> RestError:
    using = f"' using the hint '{hint}" if hint else ""
    related = {fk.target[1] for fk in catalog.fks_from(source.qualified)} | {
        fk.source[1] for fk in catalog.fks_to(source.qualified)
    }
    close = difflib.get_close_matches(name, sorted(related), n=1, cutoff=0.6)
    suggestion = f"Perhaps you meant '{close[0]}' instead of '{name}'." if close and close[0] != name else None
    return RestError(
        400, "PGRST200",
        f"Could not find a relationship between '{source.name}' and '{name}' in the schema cache",
        f"Searched for a foreign key relationship between '{source.name}' and '{name}{using}' in the schema "
        f"'{source.schema}', but no matches were found.",
        suggestion,
    )  # fmt: skip
