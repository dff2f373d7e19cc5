"""How GoTrue reads requests and writes answers: JSON bodies, API versions, times, client addresses."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .errors import AuthError, OAuthError, bad_request

API_VERSION_HEADER = "X-Supabase-Api-Version"
API_VERSION_2024 = date(2024, 1, 1)
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")

#: JSON types a Go struct field accepts (json.Unmarshal), by the Go type name its error names.
GO_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "bool": (bool,),
    "map[string]interface {}": (dict,),
    "[]string": (list,),
}


def uses_2024_errors(request: Request) -> bool:
    """``DetermineClosestAPIVersion``: a valid date on or after 2024-01-01 selects the 2024 error shape."""
    raw = request.headers.get(API_VERSION_HEADER, "").strip()
    if not _API_VERSION.match(raw):
        return False
    try:
        return date.fromisoformat(raw) >= API_VERSION_2024
    except ValueError:
        return False


async def json_params(request: Request, struct: str, fields: dict[str, str]) -> dict[str, Any]:
    """``retrieveRequestParams``: the body as the Go struct ``struct`` would take it, or 400 ``bad_json``.

    ``fields`` maps JSON names to Go types; unknown names are ignored and ``null`` means absent, as
    ``json.Unmarshal`` does. The text after the colon is this double's, not Go's exact wording.
    """
    body = await request.body()
    try:
        value = json.loads(body) if body.strip() else _raise_eof()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _bad_json(_syntax_message(body, exc)) from exc
    if not isinstance(value, dict):
        raise _bad_json(f"json: cannot unmarshal {_json_kind(value)} into Go value of type api.{struct}")
    params: dict[str, Any] = {}
    for name, go_type in fields.items():
        item = value.get(name)
        if item is None:
            continue
        if not isinstance(item, GO_TYPES[go_type]):
            message = (
                f"json: cannot unmarshal {_json_kind(item)} into Go struct field {struct}.{name} of type {go_type}"
            )
            raise _bad_json(message)
        params[name] = item
    return params


def _raise_eof() -> Any:
    raise json.JSONDecodeError("unexpected end of JSON input", "", 0)


def _bad_json(detail: str) -> AuthError:
    return bad_request("bad_json", f"Could not parse request body as JSON: {detail}")


def _syntax_message(body: bytes, exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError) and exc.pos < len(exc.doc.rstrip()):
        return f"invalid character {exc.doc[exc.pos]!r} looking for beginning of value"
    return "unexpected end of JSON input"


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def go_json(value: object) -> bytes:
    """``json.Marshal``'s output: compact, with ``<``, ``>`` and ``&`` escaped as Go escapes them."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028")):
        text = text.replace(char, escape)
    return text.replace("\u2029", "\\u2029").encode()


def send_json(status: int, value: object, headers: dict[str, str] | None = None) -> Response:
    return Response(go_json(value), status, headers=headers, media_type="application/json")


def error_response(request: Request, error: AuthError | OAuthError) -> Response:
    """``HandleResponseError``: the body shape follows the request's API version."""
    if isinstance(error, OAuthError):
        return send_json(400, {"error": error.error, "error_description": error.description})
    if uses_2024_errors(request):
        body: dict[str, Any] = {"code": error.code, "message": error.msg, **error.extra}
        return send_json(error.status, body, {API_VERSION_HEADER: API_VERSION_2024.isoformat()})
    return send_json(error.status, {"code": error.status, "error_code": error.code, "msg": error.msg, **error.extra})


def go_time(value: datetime) -> str:
    """A time as Go's ``time.Time`` marshals it (RFC 3339, nanosecond precision, zeros trimmed)."""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += "." + f"{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def client_address(request: Request) -> str:
    """The peer's address: the gateway is the edge here, so forwarded-for headers are not trusted."""
    return request.client.host if request.client else ""
