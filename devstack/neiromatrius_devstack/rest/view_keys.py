"""Relationships through views, inferred the way PostgREST v12 does (SchemaCache.hs ``allViewsKeyDependencies``).

A view column that is a plain reference to a base table column carries that column's keys: the
view's rewrite rule (``pg_rewrite.ev_action``) records, per output column of its top-level query,
the table and column it comes from (``resorigtbl``/``resorigcol``). A foreign key whose columns a
view exposes then also joins the view, on either end, and a view exposing a whole primary key
has it too. Views over views are followed to the base table.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

#: (base table oid, attnum) a view column reads, by view oid and view column name.
Origins = dict[int, dict[str, tuple[int, int]]]


def _tokens(text: str) -> Iterator[tuple[int, str]]:
    """``pg_node_tree`` text as (nesting depth, token); quoted strings and escapes are skipped over."""
    depth, i, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "({":
            yield depth, ch
            depth += 1
            i += 1
        elif ch in ")}":
            depth -= 1
            yield depth, ch
            i += 1
        elif ch.isspace():
            i += 1
        elif ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "(){}":
                j += 2 if text[j] == "\\" else 1
            yield depth, text[i:j]
            i = j


def target_origins(tree: str) -> list[tuple[int, int, int]]:
    """``(resno, resorigtbl, resorigcol)`` of the top-level query's visible output columns."""
    tokens = _tokens(tree)
    for depth, token in tokens:
        if depth == 2 and token == ":targetList":
            break
    else:
        return []
    out: list[tuple[int, int, int]] = []
    fields: dict[str, str] = {}
    key: str | None = None
    for depth, token in tokens:
        if depth == 2 and token == ")":
            break
        if depth == 3 and token == "}":
            if fields.get(":resjunk") == "false" and fields.get(":resorigtbl", "0") != "0":
                out.append((int(fields[":resno"]), int(fields[":resorigtbl"]), int(fields[":resorigcol"])))
            fields, key = {}, None
        elif depth == 4:
            if token.startswith(":"):
                key = token
            elif key is not None:
                fields[key] = token
                key = None
        elif depth > 4:
            key = None  # a nested node's value (``:expr {VAR …}``) is not ours
    return out


@dataclass(frozen=True)
class ViewColumns:
    """What one view exposes: each base column it reads, under which view column names."""

    view: int
    by_base: Mapping[tuple[int, int], tuple[str, ...]]

    def names(self, table: int, attnums: Sequence[int]) -> tuple[str, ...] | None:
        """The view's columns for the base columns ``attnums`` of ``table``, if it exposes them all."""
        picked = []
        for attnum in attnums:
            names = self.by_base.get((table, attnum))
            if not names:
                return None
            picked.append(names[0])
        return tuple(picked)


def resolve(direct: Origins, view_ids: set[int], column_names: Mapping[int, Sequence[str]]) -> list[ViewColumns]:
    """Follow views over views down to base tables; a view column maps to its base table column."""
    out: list[ViewColumns] = []
    for view, columns in direct.items():
        by_base: dict[tuple[int, int], list[str]] = {}
        for name, origin in columns.items():
            base = _base(origin, direct, view_ids, column_names)
            if base is not None:
                by_base.setdefault(base, []).append(name)
        out.append(ViewColumns(view, {k: tuple(v) for k, v in by_base.items()}))
    return out


def _base(
    origin: tuple[int, int], direct: Origins, view_ids: set[int], column_names: Mapping[int, Sequence[str]]
) -> tuple[int, int] | None:
    seen: set[int] = set()
    while origin[0] in view_ids:
        view, attnum = origin
        if view in seen:
            return None
        seen.add(view)
        names = column_names.get(view, ())
        if not 0 < attnum <= len(names):
            return None
        next_origin = direct.get(view, {}).get(names[attnum - 1])
        if next_origin is None:
            return None
        origin = next_origin
    return origin
