"""POST (insert, upsert), PATCH, PUT and DELETE on a table or view."""

from __future__ import annotations

import json
from urllib.parse import quote

from .catalog import Column, Relation
from .engine import Engine
from .errors import JSON_UTF8, RestError
from .model import Condition, Filter
from .payload import Payload, missing_column, parse_payload, pick_columns
from .reply import Reply, content_range
from .request import ApiRequest
from .responses import common_headers, content_headers, row_checks
from .sqlfrag import Params, Scope, ident, render_conditions
from .sqlread import ReadBuilder, Source
from .sqlresult import body_expression, wrap
from .sqlwrite import Returning, delete_sql, insert_sql, update_sql

#: How many rows the upsert inserted rather than updated (an all-update upsert answers 200, not 201).
_INSERTED = ", (SELECT pg_catalog.count(*) FROM pgrst_source WHERE pgrst_inserted) AS inserted"


async def write(engine: Engine, req: ApiRequest) -> Reply:
    rel = await engine.relation(req.schema, req.target)
    if rel is None:
        return Reply(404, {"Content-Type": JSON_UTF8}, b"{}")  # PostgREST v12 answers a write to nothing so
    if req.method == "POST":
        return await _insert(engine, req, rel)
    if req.method == "PATCH":
        return await _update(engine, req, rel)
    if req.method == "PUT":
        return await _put(engine, req, rel)
    return await _delete(engine, req, rel)


def _columns(rel: Relation, payload: Payload, req: ApiRequest) -> list[Column]:
    names = req.query.columns if req.query.columns is not None else payload.keys
    picked = pick_columns(rel, names)
    if isinstance(picked, str):
        raise missing_column(rel, picked)
    return picked


def _representation(engine: Engine, req: ApiRequest, rel: Relation, params: Params, *, explicit_star: bool) -> str:
    types = rel.filter_types
    source = Source("pgrst_source", rel.name, types, rel, explicit_star=explicit_star)
    level = ReadBuilder(
        engine.catalog, req.query, params, root_filters=False, aggregates=engine.aggregates_enabled
    ).level(source, req.query.select, (), [])
    order = f" ORDER BY {level.order}" if level.order else ""
    return f"SELECT {', '.join(level.columns)} FROM {level.from_clause(source)}{order}"


def _rows_and_body(
    engine: Engine, req: ApiRequest, rel: Relation, params: Params, *, inserted: bool
) -> tuple[str, str]:
    representation = req.prefs.representation
    if representation == "representation":
        rows = _representation(engine, req, rel, params, explicit_star=inserted)
        return rows, body_expression(req.media)
    if representation == "headers-only" and rel.pk:
        keys = ", ".join(f"{ident(c)}::text AS {ident(c)}" for c in rel.pk)
        return f"SELECT {keys} FROM pgrst_source", "coalesce(json_agg(_postgrest_t), '[]')::text"
    return "SELECT 1 FROM pgrst_source", "NULL::text"


def _finish(req: ApiRequest, reply: Reply, body: object) -> Reply:
    if req.prefs.representation == "representation":
        reply.headers.update(content_headers(req))
        reply.body = str(body).encode()
    return reply


async def _insert(engine: Engine, req: ApiRequest, rel: Relation) -> Reply:
    payload = parse_payload(req.body, uniform_keys=req.query.columns is None)
    columns = _columns(rel, payload, req)
    resolution = req.prefs.get("resolution")
    conflict = req.query.on_conflict or rel.pk
    upsert = resolution in ("merge-duplicates", "ignore-duplicates") and bool(conflict)
    merge = upsert and resolution == "merge-duplicates"
    params = Params()
    body = params.add(payload.text, "json")
    returning = Returning(
        rows=req.prefs.representation == "representation",
        keys=req.prefs.representation == "headers-only",
        inserted=merge,
    )
    cte = insert_sql(
        rel, columns, body, returning=returning,
        resolution=resolution if upsert else None,
        conflict=conflict, defaults=req.prefs.get("missing") == "default",
    )  # fmt: skip
    rows, body_sql = _rows_and_body(engine, req, rel, params, inserted=merge)
    sql = wrap(rows, body_sql, with_sql=f"WITH pgrst_source AS ({cte}) ", extra=_INSERTED if merge else "")
    row = await engine.run(req, sql, params.values, read_only=False, check=row_checks(req))
    page = int(row["page"])
    status = 200 if merge and int(row["inserted"]) == 0 else 201
    honoured = ["missing", "return", "count", "tx", "handling", "timezone"]
    if resolution is not None and (rel.pk or req.query.on_conflict):
        honoured.append("resolution")
    reply = Reply(status, common_headers(req, engine, honoured))
    reply.headers["Content-Range"] = content_range(1, 0, page if req.prefs.count else None)
    if req.prefs.representation == "headers-only":
        location = _location(rel, row["body"], page)
        if location:
            reply.headers["Location"] = location
    return _finish(req, reply, row["body"]).with_gucs(row["headers"], row["status"])


def _location(rel: Relation, body: object, page: int) -> str | None:
    if page != 1 or body is None:
        return None
    keys = json.loads(str(body))[0]
    query = "&".join(f"{quote(k, safe='')}={quote('eq.' + str(v), safe='')}" for k, v in keys.items())
    return f"/{rel.name}?{query}"


def _root_where(req: ApiRequest, rel: Relation, params: Params) -> list[str]:
    scope = Scope(rel.name, rel.filter_types)
    return render_conditions(req.query.conditions(), scope, params)


async def _update(engine: Engine, req: ApiRequest, rel: Relation) -> Reply:
    payload = parse_payload(req.body, uniform_keys=req.query.columns is None)
    columns = _columns(rel, payload, req)
    params = Params()
    body = params.add(payload.text, "json") if columns else ""
    where = _root_where(req, rel, params)
    returning = Returning(rows=req.prefs.representation == "representation")
    cte = update_sql(rel, columns, body, where, returning=returning)
    return await _mutation(engine, req, rel, params, cte, honoured=("missing",))


async def _delete(engine: Engine, req: ApiRequest, rel: Relation) -> Reply:
    params = Params()
    where = _root_where(req, rel, params)  # supabase-py sends a `{}` body with DELETE: it means nothing
    returning = Returning(rows=req.prefs.representation == "representation")
    cte = delete_sql(rel, where, returning=returning)
    return await _mutation(engine, req, rel, params, cte, honoured=())


async def _mutation(
    engine: Engine, req: ApiRequest, rel: Relation, params: Params, cte: str, *, honoured: tuple[str, ...]
) -> Reply:
    rows, body_sql = _rows_and_body(engine, req, rel, params, inserted=False)
    sql = wrap(rows, body_sql, with_sql=f"WITH pgrst_source AS ({cte}) ")
    row = await engine.run(req, sql, params.values, read_only=False, check=row_checks(req, max_affected=True))
    page = int(row["page"])
    names = ("return", "count", "tx", "handling", "timezone", "max-affected", *honoured)
    full = req.prefs.representation == "representation"
    reply = Reply(200 if full else 204, common_headers(req, engine, names))
    total = page if req.prefs.count else None
    # PATCH reports the rows it changed as 0-(n-1); DELETE, like an insert, as "*".
    span = (0, page - 1) if req.method == "PATCH" else (1, 0)
    reply.headers["Content-Range"] = content_range(*span, total)
    return _finish(req, reply, row["body"]).with_gucs(row["headers"], row["status"])


async def _put(engine: Engine, req: ApiRequest, rel: Relation) -> Reply:
    """PUT upserts one row whose primary key the filters name with ``eq``."""
    filters = req.query.conditions()
    if not rel.pk or not _pk_filters(filters, rel):
        raise RestError(405, "PGRST105", "Filters must include all and only primary key columns with 'eq' operators")
    payload = parse_payload(req.body)
    if not isinstance(payload.value, dict) or any(
        str(payload.value.get(f.field.name)) != f.expr.value for f in filters if isinstance(f, Filter)
    ):
        raise RestError(400, "PGRST115", "Payload values do not match URL in primary key column(s)")
    columns = _columns(rel, payload, req)
    params = Params()
    body = params.add(payload.text, "json")
    returning = Returning(rows=req.prefs.representation == "representation", inserted=True)
    cte = insert_sql(rel, columns, body, returning=returning, resolution="merge-duplicates", conflict=rel.pk)
    rows, body_sql = _rows_and_body(engine, req, rel, params, inserted=True)
    sql = wrap(rows, body_sql, with_sql=f"WITH pgrst_source AS ({cte}) ", extra=_INSERTED)
    row = await engine.run(req, sql, params.values, read_only=False, check=row_checks(req))
    status = (201 if int(row["inserted"]) > 0 else 200) if req.prefs.representation == "representation" else 204
    reply = Reply(status, common_headers(req, engine, ("return", "count", "tx", "handling", "timezone")))
    return _finish(req, reply, row["body"]).with_gucs(row["headers"], row["status"])


def _pk_filters(filters: list[Condition], rel: Relation) -> bool:
    names = []
    for f in filters:
        if not isinstance(f, Filter) or f.expr.op != "eq" or f.expr.negated or f.field.path:
            return False
        names.append(f.field.name)
    return sorted(names) == sorted(rel.pk)
