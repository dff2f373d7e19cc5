"""The outer statement every request runs: PostgreSQL renders the body, counts rows, reports the GUCs.

Its result columns never change (``total bigint, page bigint, body text, headers text, status
text`` plus optional extras), so a cached prepared statement stays valid across schema changes.
"""

from __future__ import annotations

from typing import Literal

from .negotiation import Media, MediaChoice

#: How the rows become the body: rows of a relation, or one scalar column named ``pgrst_scalar``.
BodyShape = Literal["rows", "scalar"]

_GUCS = (
    "nullif(current_setting('response.headers', true), '') AS headers, "
    "nullif(current_setting('response.status', true), '') AS status"
)
_T = "_postgrest_t"


def body_expression(media: MediaChoice, *, shape: BodyShape = "rows", single_value: bool = False) -> str:
    """The aggregate producing the response body from the rows aliased ``_postgrest_t``."""
    if media.media is Media.CSV:
        header = f"(SELECT coalesce(string_agg(k, ','), '') FROM json_object_keys(json_agg({_T})->0) AS k)"
        lines = f"coalesce(string_agg(substring({_T}::text, 2, length({_T}::text) - 2), chr(10)), '')"
        return f"{header} || chr(10) || {lines}"
    if shape == "scalar":
        element = f"{_T}.pgrst_scalar"
    elif media.strip_nulls:
        element = f"json_strip_nulls(row_to_json({_T}))"
    else:
        element = _T
    if media.singular or single_value:
        return f"coalesce((json_agg({element})->0)::text, 'null')"
    return f"coalesce(json_agg({element}), '[]')::text"


def wrap(rows_sql: str, body: str, *, total: str = "NULL::bigint", with_sql: str = "", extra: str = "") -> str:
    return (
        f"{with_sql}SELECT {total} AS total, pg_catalog.count(*) AS page, {body} AS body, {_GUCS}{extra} "
        f"FROM ({rows_sql}) {_T}"
    )
