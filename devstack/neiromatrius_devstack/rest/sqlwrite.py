"""INSERT, UPDATE and DELETE as data-modifying CTEs named ``pgrst_source`` (QueryBuilder.hs shapes).

The JSON body travels as one parameter and PostgreSQL unpacks it with ``json_to_recordset``, so
values are parsed by each column's own input function, exactly as PostgREST does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .catalog import Column, Relation
from .sqlfrag import ident, literal, qualified

_UNIFORM = (
    "LATERAL (SELECT CASE WHEN json_typeof(pgrst_payload.json_data) = 'array' THEN pgrst_payload.json_data "
    "ELSE json_build_array(pgrst_payload.json_data) END AS val) pgrst_uniform_json"
)


def json_body_from(columns: Sequence[Column], body: str, *, defaults: bool = False, limit_one: bool = False) -> str:
    """``FROM …`` yielding one ``pgrst_body`` row per object of the JSON body (an object or an array)."""
    parts = [f"(SELECT {body} AS json_data) pgrst_payload", _UNIFORM]
    source, to_records, elements = "pgrst_uniform_json.val", "json_to_recordset", "json_array_elements"
    with_defaults = [c for c in columns if c.default is not None]
    if defaults and with_defaults:
        # Keys present in an object win over the defaults (``||`` keeps the right-hand side).
        pairs = ", ".join(f"{literal(c.name)}, {c.default}" for c in with_defaults)
        parts.append(
            f"LATERAL (SELECT jsonb_agg(jsonb_build_object({pairs}) || elem) AS val "
            "FROM jsonb_array_elements(pgrst_uniform_json.val::jsonb) elem) pgrst_json_defs"
        )
        source, to_records, elements = "pgrst_json_defs.val", "jsonb_to_recordset", "jsonb_array_elements"
    limit = " LIMIT 1" if limit_one else ""
    if columns:
        typed = ", ".join(f"{ident(c.name)} {c.type}" for c in columns)
        parts.append(f"LATERAL (SELECT * FROM {to_records}({source}) AS _({typed}){limit}) pgrst_body")
    else:
        parts.append(f"LATERAL (SELECT FROM {elements}({source}) _{limit}) pgrst_body")
    return "FROM " + ", ".join(parts)


@dataclass(frozen=True)
class Returning:
    """What the statement hands back: whole rows, the primary key, and whether each row is new."""

    rows: bool = False
    keys: bool = False
    inserted: bool = False

    def sql(self, rel: Relation) -> str:
        table = qualified(rel.schema, rel.name)
        items = []
        if self.rows:
            items.append(f"{table}.*")
        elif self.keys and rel.pk:
            items += [f"{table}.{ident(c)}" for c in rel.pk]
        if self.inserted:
            # xmax is 0 for a freshly inserted row and set for one ON CONFLICT updated.
            items.append(f"({table}.xmax = 0) AS pgrst_inserted")
        return " RETURNING " + (", ".join(items) or "1")


def insert_sql(
    rel: Relation,
    columns: Sequence[Column],
    body: str,
    *,
    returning: Returning,
    resolution: str | None = None,
    conflict: Sequence[str] = (),
    defaults: bool = False,
) -> str:
    names = ", ".join(ident(c.name) for c in columns)
    target = qualified(rel.schema, rel.name) + (f"({names})" if columns else "")
    values = ", ".join(f"pgrst_body.{ident(c.name)}" for c in columns)
    sql = f"INSERT INTO {target} SELECT {values} {json_body_from(columns, body, defaults=defaults)}"
    if resolution is not None and conflict:
        on = ", ".join(ident(c) for c in conflict)
        if resolution == "merge-duplicates" and columns:
            sets = ", ".join(f"{ident(c.name)} = EXCLUDED.{ident(c.name)}" for c in columns)
            sql += f" ON CONFLICT({on}) DO UPDATE SET {sets}"
        else:
            sql += f" ON CONFLICT({on}) DO NOTHING"
    return sql + returning.sql(rel)


def update_sql(
    rel: Relation, columns: Sequence[Column], body: str, where: Sequence[str], *, returning: Returning
) -> str:
    table = qualified(rel.schema, rel.name)
    if not columns:
        # PostgREST: an empty object updates nothing and returns no rows.
        return f"SELECT {ident(rel.name)}.* FROM {table} AS {ident(rel.name)} WHERE false"
    sets = ", ".join(f"{ident(c.name)} = pgrst_body.{ident(c.name)}" for c in columns)
    conditions = f" WHERE {' AND '.join(where)}" if where else ""
    body_from = json_body_from(columns, body, limit_one=True)
    return f"UPDATE {table} SET {sets} {body_from}{conditions}{returning.sql(rel)}"


def delete_sql(rel: Relation, where: Sequence[str], *, returning: Returning) -> str:
    conditions = f" WHERE {' AND '.join(where)}" if where else ""
    return f"DELETE FROM {qualified(rel.schema, rel.name)}{conditions}" + returning.sql(rel)
