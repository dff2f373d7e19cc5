"""Building the answer: status and ``Content-Range`` (RangeQuery.hs), and the ``response.*`` GUC overrides."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .errors import JSON_UTF8, RestError


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def with_gucs(self, guc_headers: str | None, guc_status: str | None) -> Reply:
        return apply_gucs(self, guc_headers, guc_status)


def content_range(lower: int, upper: int, total: int | None) -> str:
    """``contentRangeH``: ``lower-upper/total``, ``*`` for an empty range, ``*`` total when not counted."""
    span = f"{lower}-{upper}" if total != 0 and lower <= upper else "*"
    return f"{span}/{'*' if total is None else total}"


def range_status(lower: int, upper: int, total: int | None) -> int:
    if total is None:
        return 200
    if lower > total:
        return 416
    if 1 + upper - lower < total:
        return 206
    return 200


def out_of_range(offset: int, total: int) -> RestError:
    return RestError(
        416, "PGRST103", "Requested range not satisfiable",
        f"An offset of {offset} was requested, but there are only {total} rows.",
    )  # fmt: skip


def singular_error(rows: int) -> RestError:
    return RestError(
        406, "PGRST116", "JSON object requested, multiple (or no) rows returned", f"The result contains {rows} rows"
    )


def max_affected_error(rows: int) -> RestError:
    return RestError(
        400, "PGRST124", "Query result exceeds max-affected preference constraint", f"The query affects {rows} rows"
    )


def apply_gucs(reply: Reply, guc_headers: str | None, guc_status: str | None) -> Reply:
    """``response.headers`` (a JSON array of one-key objects) and ``response.status`` set in SQL win."""
    if guc_headers:
        try:
            items = json.loads(guc_headers)
            if not isinstance(items, list):
                raise ValueError(guc_headers)
            for item in items:
                if not isinstance(item, dict) or len(item) != 1:
                    raise ValueError(guc_headers)
                ((name, value),) = item.items()
                if not isinstance(value, str):
                    raise ValueError(guc_headers)
                reply.headers[str(name)] = value
        except ValueError as exc:
            raise RestError(
                500, "PGRST111",
                "response.headers guc must be a JSON array composed of objects with a single key and a string value",
            ) from exc  # fmt: skip
    if guc_status:
        try:
            status = int(guc_status)
            if not 100 <= status <= 599:
                raise ValueError(guc_status)
        except ValueError as exc:
            raise RestError(500, "PGRST112", "response.status guc must be a valid status code") from exc
        reply.status = status
    return reply


def error_reply(error: RestError) -> Reply:
    headers = {"Content-Type": JSON_UTF8, **error.headers}
    return Reply(error.status, headers, error.body())
