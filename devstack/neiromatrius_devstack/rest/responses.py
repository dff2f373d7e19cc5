"""Pieces every kind of request shares: the common headers and the checks made before commit."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from .engine import Engine, RowCheck
from .errors import RestError
from .reply import max_affected_error, singular_error
from .request import ApiRequest


def common_headers(req: ApiRequest, engine: Engine, honoured: Iterable[str]) -> dict[str, str]:
    """``Preference-Applied`` with the preferences this kind of request honours."""
    names = [n for n in honoured if n != "tx" or engine.allow_tx_override]
    applied = req.prefs.applied(names)
    return {"Preference-Applied": applied} if applied else {}


def content_headers(req: ApiRequest) -> dict[str, str]:
    """Sent with a body only: its type, and the schema when a profile header chose it."""
    headers = {"Content-Type": req.media.content_type}
    if req.profile_negotiated:
        headers["Content-Profile"] = req.schema
    return headers


def row_checks(req: ApiRequest, *, max_affected: bool = False) -> RowCheck | None:
    """Singular media needs exactly one row; ``max-affected`` caps the rows a write may touch."""
    singular = req.media.singular
    limit = req.prefs.max_affected if max_affected else None
    if not singular and limit is None:
        return None

    def check(row: asyncpg.Record) -> RestError | None:
        rows = int(row["page"])
        if limit is not None and rows > limit:
            return max_affected_error(rows)
        if singular and rows != 1:
            return singular_error(rows)
        return None

    return check
