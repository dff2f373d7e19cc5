"""PostgREST's error responses: one exception type, and the SQLSTATE → HTTP table (v12).

::

    RestError                 any answer that is not a success: status, code, message, details, hint
     ├─ from_pg(exc, authed)  a PostgreSQL error, mapped with PostgREST's table
     └─ connection_error(exc) the database is unreachable or the connection broke (503 PGRST000/001)

Every error body is ``{"code", "details", "hint", "message"}``, like PostgREST's.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

JSON_UTF8 = "application/json; charset=utf-8"


class RestError(Exception):
    """An error answer, already shaped the way PostgREST would send it."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        hint: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = headers or {}

    def body(self) -> bytes:
        payload = {"code": self.code, "details": self.details, "hint": self.hint, "message": self.message}
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def parse_error(what: str, text: str, column: int, details: str) -> RestError:
    """PGRST100 in Parsec's words: ``"failed to parse filter (x)" (line 1, column n)``."""
    message = f'"failed to parse {what} ({text})" (line 1, column {column})'
    return RestError(400, "PGRST100", message, details)


def _status_for(sqlstate: str, message: str, authed: bool) -> int:
    exact = {
        "23503": 409,
        "23505": 409,
        "25006": 405,
        "53400": 500,
        "57P01": 503,
        "P0001": 400,
        "42P01": 404,
        "42P17": 500,
    }
    if sqlstate in exact:
        return exact[sqlstate]
    if sqlstate == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    if sqlstate == "42883":
        return 406 if message.startswith("function xmlagg(") else 404
    if sqlstate == "42501":
        return 403 if authed else 401
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    by_class = {
        "08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500, "38": 500, "39": 500,
        "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500, "57": 500, "58": 500, "F0": 500, "HV": 500,
        "P0": 500, "XX": 500,
    }  # fmt: skip
    return by_class.get(sqlstate[:2], 400)


def from_pg(exc: asyncpg.PostgresError, authed: bool) -> RestError:
    """Translate a server error the way PostgREST's ``pgErrorStatus`` does."""
    sqlstate = exc.sqlstate or "XX000"
    message = str(exc.args[0]) if exc.args else str(exc)
    details = getattr(exc, "detail", None)
    hint = getattr(exc, "hint", None)
    if sqlstate == "PGRST":
        return _raised_pgrst(message, details)
    status = _status_for(sqlstate, message, authed)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return RestError(status, sqlstate, message, details, hint, headers)


def _raised_pgrst(message: str, detail: str | None) -> RestError:
    """``RAISE SQLSTATE 'PGRST' USING message = '{json}', detail = '{json}'`` controls the whole answer."""
    try:
        body = json.loads(message)
        if not isinstance(body, dict) or "code" not in body or "message" not in body:
            raise ValueError(message)
    except ValueError:
        return RestError(
            500, "PGRST121", "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
            f"Invalid JSON value for MESSAGE: '{message}'",
            "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional keys: "
            "'details', 'hint'.",
        )  # fmt: skip
    try:
        meta = json.loads(detail or "")
        status = int(meta["status"])
        headers = {str(k): str(v) for k, v in (meta.get("headers") or {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        what = (
            "DETAIL is missing in the RAISE statement" if not detail else f"Invalid JSON value for DETAIL: '{detail}'"
        )
        return RestError(
            500, "PGRST121", "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error", what,
            "DETAIL must be a JSON object with obligatory keys: 'status', 'headers' and optional key: 'status_text'.",
        )  # fmt: skip
    return RestError(status, str(body["code"]), str(body["message"]), body.get("details"), body.get("hint"), headers)


def connection_error(exc: BaseException) -> RestError:
    """The pool could not give a working connection, or it broke mid-request."""
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.exceptions.InternalClientError):
        return RestError(503, "PGRST001", "Database client error. Retrying the connection.", str(exc))
    return RestError(503, "PGRST000", "Database connection error. Retrying the connection.", str(exc) or None)


def pool_timeout() -> RestError:
    return RestError(504, "PGRST003", "Timed out acquiring connection from connection pool.")
