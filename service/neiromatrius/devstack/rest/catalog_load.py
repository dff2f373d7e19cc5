"""Read the schema cache from ``pg_catalog`` in one transaction on an admin connection."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, cast

import asyncpg

from .catalog import Catalog, Column, ForeignKey, Function, Param, QualifiedName, Relation

# ``search_path = pg_catalog`` makes format_type and pg_get_expr schema-qualify every user type
# and sequence, so the text is valid whatever search_path a request runs with.
_RELATIONS = """
select c.oid, n.nspname as schema, c.relname as name, c.relkind::text as kind
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any($1::text[]) and c.relkind in ('r', 'v', 'm', 'f', 'p')
"""

_COLUMNS = """
select a.attrelid as relid, a.attname as name, format_type(a.atttypid, null) as type,
       pg_get_expr(d.adbin, d.adrelid) as default_expr
from pg_attribute a
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum and a.attgenerated = ''
where a.attrelid = any($1::oid[]) and a.attnum > 0 and not a.attisdropped
order by a.attrelid, a.attnum
"""

_CONSTRAINTS = """
select con.conname as name, con.contype::text as kind, con.conrelid as relid, con.confrelid as frelid,
       array(select a.attname from unnest(con.conkey) with ordinality k(num, i)
             join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.num order by k.i) as cols,
       array(select a.attname from unnest(con.confkey) with ordinality k(num, i)
             join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.num order by k.i) as fcols
from pg_constraint con
where con.contype in ('p', 'u', 'f') and con.conrelid = any($1::oid[])
"""

_FUNCTIONS = """
select n.nspname as schema, p.proname as name, p.provolatile::text as volatility, p.proretset as returns_set,
       format_type(p.prorettype, null) as return_type, t.typtype::text as ret_kind, t.typrelid as ret_relid,
       coalesce(p.proargnames, '{}') as arg_names, coalesce(p.proargmodes::text[], '{}') as arg_modes,
       array(select format_type(x, null) from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]))
             with ordinality u(x, i) order by i) as arg_types,
       p.pronargs as n_in, p.pronargdefaults as n_defaults, p.provariadic <> 0 as variadic
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
join pg_type t on t.oid = p.prorettype
where n.nspname = any($1::text[]) and p.prokind = 'f'
"""

_ROLE_SETTINGS = """
select r.rolname as role, s.setconfig as config
from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
where s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
order by s.setdatabase
"""

_USER_SETTINGS = "select name from pg_settings where context = 'user'"
_TIMEZONES = "select name from pg_timezone_names"


async def load_catalog(
    conn: asyncpg.Connection, schemas: Sequence[str], timezones: frozenset[str] = frozenset()
) -> Catalog:
    """Read everything in one read-only transaction; ``timezones`` never change, so pass them back in."""
    async with conn.transaction(readonly=True):
        await conn.execute("set local search_path = pg_catalog")
        rel_rows = await conn.fetch(_RELATIONS, list(schemas))
        fn_rows = await conn.fetch(_FUNCTIONS, list(schemas))
        relids = [r["oid"] for r in rel_rows] + [r["ret_relid"] for r in fn_rows if r["ret_relid"]]
        col_rows = await conn.fetch(_COLUMNS, relids)
        con_rows = await conn.fetch(_CONSTRAINTS, [r["oid"] for r in rel_rows])
        settings = await conn.fetch(_ROLE_SETTINGS)
        user_settable = {r["name"] for r in await conn.fetch(_USER_SETTINGS)}
        if not timezones:
            timezones = frozenset(r["name"] for r in await conn.fetch(_TIMEZONES))
    columns = _columns_by_relid(col_rows)
    names = {r["oid"]: (r["schema"], r["name"]) for r in rel_rows}
    relations, fks = _relations(rel_rows, columns, con_rows, names)
    return Catalog(
        relations=relations,
        foreign_keys=fks,
        functions=_functions(fn_rows, columns, names),
        role_settings=_role_settings(settings, user_settable),
        timezones=timezones,
    )


def _columns_by_relid(rows: Iterable[asyncpg.Record]) -> dict[int, dict[str, Column]]:
    out: dict[int, dict[str, Column]] = {}
    for row in rows:
        out.setdefault(row["relid"], {})[row["name"]] = Column(row["name"], row["type"], row["default_expr"])
    return out


def _relations(
    rel_rows: Sequence[asyncpg.Record],
    columns: dict[int, dict[str, Column]],
    con_rows: Sequence[asyncpg.Record],
    names: dict[int, QualifiedName],
) -> tuple[dict[QualifiedName, Relation], list[ForeignKey]]:
    pks: dict[int, tuple[str, ...]] = {}
    uniques: dict[int, list[frozenset[str]]] = {}
    fks: list[ForeignKey] = []
    for con in con_rows:
        cols = tuple(con["cols"])
        if con["kind"] == "p":
            pks[con["relid"]] = cols
        if con["kind"] in ("p", "u"):
            uniques.setdefault(con["relid"], []).append(frozenset(cols))
        elif con["kind"] == "f" and con["frelid"] in names:
            fks.append(ForeignKey(con["name"], names[con["relid"]], cols, names[con["frelid"]], tuple(con["fcols"])))
    relations = {
        (r["schema"], r["name"]): Relation(
            r["schema"],
            r["name"],
            r["kind"],
            columns.get(r["oid"], {}),
            pks.get(r["oid"], ()),
            tuple(uniques.get(r["oid"], ())),
        )
        for r in rel_rows
    }
    return relations, fks


def _functions(
    rows: Sequence[asyncpg.Record], columns: dict[int, dict[str, Column]], names: dict[int, QualifiedName]
) -> dict[QualifiedName, list[Function]]:
    out: dict[QualifiedName, list[Function]] = {}
    for row in rows:
        fn = _function(row, columns, names)
        if fn is not None:
            out.setdefault((fn.schema, fn.name), []).append(fn)
    return out


def _function(
    row: asyncpg.Record, columns: dict[int, dict[str, Column]], names: dict[int, QualifiedName]
) -> Function | None:
    arg_names: list[str] = list(row["arg_names"])
    types: list[str] = list(row["arg_types"])
    modes: list[str] = list(row["arg_modes"]) or ["i"] * len(types)
    arg_names += [""] * (len(types) - len(arg_names))
    inputs = [(n, t, m) for n, t, m in zip(arg_names, types, modes, strict=True) if m in ("i", "b", "v")]
    outputs = {n: Column(n, t) for n, t, m in zip(arg_names, types, modes, strict=True) if m in ("o", "b", "t")}
    first_default = len(inputs) - row["n_defaults"]
    params = tuple(
        Param(name, typ, has_default=i >= first_default, variadic=mode == "v")
        for i, (name, typ, mode) in enumerate(inputs)
    )
    shape: Literal["scalar", "composite", "void"]
    result_columns: dict[str, Column] = {}
    if row["return_type"] == "void":
        shape = "void"
    elif row["ret_kind"] == "c":
        shape, result_columns = "composite", columns.get(row["ret_relid"], {})
    elif row["return_type"] == "record":
        if not outputs:
            return None  # needs a column definition list at the call site: PostgREST cannot call it either
        shape, result_columns = "composite", outputs
    else:
        shape = "scalar"
    volatility = cast(Literal["v", "s", "i"], row["volatility"])
    relation = names.get(row["ret_relid"]) if row["ret_relid"] else None
    return Function(
        row["schema"], row["name"], params, row["returns_set"], shape, row["return_type"], volatility,
        result_columns, relation,
    )  # fmt: skip


def _role_settings(rows: Iterable[asyncpg.Record], user_settable: set[str]) -> dict[str, tuple[tuple[str, str], ...]]:
    merged: dict[str, dict[str, str]] = {}
    for row in rows:
        for item in row["config"] or ():
            name, _, value = str(item).partition("=")
            if name.lower() in user_settable:
                merged.setdefault(row["role"], {})[name] = value
    return {role: tuple(values.items()) for role, values in merged.items()}
