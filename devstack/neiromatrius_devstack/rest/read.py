"""GET and HEAD on a table or view."""

from __future__ import annotations

from .catalog import Relation
from .counting import Counting
from .engine import Engine
from .querystring import reject_rpc_args
from .reply import Reply, content_range, out_of_range, range_status
from .request import ApiRequest
from .responses import common_headers, content_headers, row_checks
from .sqlfrag import Params, qualified
from .sqlread import ReadBuilder, Source, limit_offset
from .sqlresult import body_expression, wrap


async def read(engine: Engine, req: ApiRequest) -> Reply:
    reject_rpc_args(req.query)
    # An unknown relation is not an error yet: PostgreSQL answers 42P01 (404), as under PostgREST v12.
    rel = await engine.relation(req.schema, req.target)
    params = Params()
    source = _source(req, rel)
    level = ReadBuilder(engine.catalog, req.query, params, aggregates=engine.aggregates_enabled).level(
        source, req.query.select, (), []
    )
    rng = req.top_range(engine.max_rows)
    order = f" ORDER BY {level.order}" if level.order else ""
    rows_sql = f"SELECT {', '.join(level.columns)} FROM {level.from_clause(source)}{order}{limit_offset(rng)}"
    counting = Counting.of(req.prefs, engine.max_rows)
    count_from = level.from_clause(source, count_only=True)
    sql = wrap(rows_sql, body_expression(req.media), total=counting.total_sql(count_from))
    explain = counting.explain_sql(count_from, len(params.values))
    row, planned = await engine.run_planned(
        req, sql, params.values, read_only=True, check=row_checks(req), explain=explain
    )
    page, total_rows = int(row["page"]), counting.total(row["total"], planned)
    lower, upper = rng.offset, rng.offset + page - 1
    status = range_status(lower, upper, total_rows)
    headers = common_headers(req, engine, ("count", "tx", "handling", "timezone"))
    headers["Content-Range"] = content_range(lower, upper, total_rows)
    headers["Content-Location"] = f"/{req.target}" + (f"?{req.query.canonical}" if req.query.canonical else "")
    headers.update(content_headers(req))
    if status == 416 and total_rows is not None:
        return Reply(416, headers, out_of_range(lower, total_rows).body())
    body = b"" if req.method == "HEAD" else str(row["body"]).encode()
    return Reply(status, headers, body).with_gucs(row["headers"], row["status"])


def _source(req: ApiRequest, rel: Relation | None) -> Source:
    types = rel.filter_types if rel is not None else {}
    return Source(qualified(req.schema, req.target), req.target, types, rel)
