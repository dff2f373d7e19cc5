"""``/rpc/<function>``: POST with JSON arguments, GET and HEAD with arguments in the query string."""

from __future__ import annotations

import json

from .catalog import Function
from .counting import Counting
from .engine import Engine
from .errors import RestError
from .model import Range
from .payload import invalid_body, parse_payload
from .reply import Reply, content_range, out_of_range, range_status
from .request import ApiRequest
from .responses import common_headers, content_headers, row_checks
from .sqlfrag import Params
from .sqlread import ReadBuilder, Source, limit_offset
from .sqlresult import body_expression, wrap
from .sqlrpc import resolve_call


async def rpc(engine: Engine, req: ApiRequest) -> Reply:
    if req.method not in ("GET", "HEAD", "POST"):
        raise RestError(405, "PGRST101", f"Cannot use the {req.method} method on RPC")
    text, keys = _arguments(req)
    single_object = req.method == "POST" and req.prefs.get("params") == "single-object"
    is_post = req.method == "POST"
    call = resolve_call(engine.catalog, req.schema, req.target, keys, is_post=is_post, single_object=single_object)
    fn = call.fn
    read_only = not is_post or fn.volatility in ("s", "i")
    params = Params()
    if call.takes_body:
        params.text(text)  # ``$1`` of ``call.source``
    source_sql = call.source
    rows, count_from, rng = _rows(engine, req, fn, params)
    body = body_expression(
        req.media, shape="rows" if fn.shape == "composite" else "scalar", single_value=not fn.returns_set
    )
    with_sql = f"WITH pgrst_source AS ({source_sql}) "
    counting = Counting.of(req.prefs, engine.max_rows)
    sql = wrap(rows, body, total=counting.total_sql(count_from), with_sql=with_sql)
    explain = counting.explain_sql(count_from, len(params.values), with_sql)
    # v12.2 enforces ``handling=strict, max-affected=n`` on RPC too: more result rows roll the call back.
    checks = row_checks(req, max_affected=fn.shape != "void")
    row, planned = await engine.run_planned(req, sql, params.values, read_only=read_only, check=checks, explain=explain)
    honoured = ("params", "count", "tx", "handling", "timezone", "max-affected")
    headers = common_headers(req, engine, honoured if fn.shape != "void" else honoured[:-1])
    page, total_rows = int(row["page"]), counting.total(row["total"], planned)
    lower, upper = rng.offset, rng.offset + page - 1
    status = range_status(lower, upper, total_rows)
    headers["Content-Range"] = content_range(lower, upper, total_rows)
    if fn.shape == "void":
        return Reply(204, headers).with_gucs(row["headers"], row["status"])
    headers.update(content_headers(req))
    if status == 416 and total_rows is not None:
        return Reply(416, headers, out_of_range(lower, total_rows).body())
    payload = b"" if req.method == "HEAD" else str(row["body"]).encode()
    return Reply(status, headers, payload).with_gucs(row["headers"], row["status"])


def _arguments(req: ApiRequest) -> tuple[str, list[str]]:
    """The arguments as JSON text for PostgreSQL, and their names for overload resolution."""
    if req.method == "POST":
        payload = parse_payload(req.body, allow_empty=True)
        if isinstance(payload.value, list):
            raise invalid_body()
        return payload.text, list(payload.keys)
    args = dict(req.query.rpc_args)
    return json.dumps(args, ensure_ascii=False), list(args)


def _rows(engine: Engine, req: ApiRequest, fn: Function, params: Params) -> tuple[str, str, Range]:
    rng = req.top_range(engine.max_rows if fn.returns_set else None)
    if fn.shape != "composite":
        return f"SELECT pgrst_source.pgrst_scalar FROM pgrst_source{limit_offset(rng)}", "pgrst_source", rng
    types = {c.name: c.value_type for c in fn.columns.values()}
    relation = engine.catalog.relation(*fn.relation) if fn.relation else None
    source = Source("pgrst_source", fn.name, types, relation)
    level = ReadBuilder(engine.catalog, req.query, params, aggregates=engine.aggregates_enabled).level(
        source, req.query.select, (), []
    )
    order = f" ORDER BY {level.order}" if level.order else ""
    rows = f"SELECT {', '.join(level.columns)} FROM {level.from_clause(source)}{order}{limit_offset(rng)}"
    return rows, level.from_clause(source, count_only=True), rng
