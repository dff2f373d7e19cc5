"""The one table that turns exceptions into HTTP answers; endpoints have no try/except.

Every error body has one shape: ``{"error": {"code": ..., "message": ..., "field": ...}}``, where
``field`` is present only for an ``InputError`` (it names the header or JSON field at fault), and
``scope`` ("client" or "chat") only for a ``RateLimited`` (it names the limit that refused).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ExceptionHandler

from ..errors import (
    AlreadyExists,
    HeadersTooLarge,
    IdempotencyConflict,
    InputError,
    MalformedBody,
    NeiromatriusError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    StoreError,
    Unauthorized,
    UnsupportedMediaType,
)

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}
# The status of each error family the API answers with; a subclass takes its nearest ancestor's row.
HTTP_STATUS: Mapping[type[NeiromatriusError], int] = {
    InputError: 422,
    MalformedBody: 400,
    Unauthorized: 401,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    IdempotencyConflict: 422,
    AlreadyExists: 409,
    HeadersTooLarge: 431,
    NotFound: 404,
    RateLimited: 429,
    StoreError: 503,
}


def http_status(exc: NeiromatriusError) -> int:
    """The status ``exc`` answers with (500 for an error no row covers)."""
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    scope: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    if scope is not None:
        error["scope"] = scope
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def input_error_response(exc: InputError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return error_response(http_status(exc), exc.code, exc.message, field=exc.field, headers=headers)


async def _input_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InputError)
    return input_error_response(exc)


async def _not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotFound)
    return error_response(http_status(exc), exc.code, exc.message)


async def _rate_limited(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RateLimited)
    headers = {"Retry-After": str(exc.retry_after)}
    return error_response(http_status(exc), exc.code, exc.message, scope=exc.scope, headers=headers)


async def _store_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreError)
    # The store's message may name hosts or SQL: it goes to the log, never to the caller.
    logger.warning("Database error on %s %s: %s", request.method, request.url.path, exc)
    message = "The database is unavailable; retry later."
    return error_response(http_status(exc), exc.code, message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, exc.detail, headers=exc.headers)


async def _client_disconnect(request: Request, exc: Exception) -> Response:
    # Nobody will read this answer; it exists for the access log (499, as nginx logs it), not a traceback.
    return error_response(499, "client_disconnected", "The client went away before the request was read.")


async def _internal_error(request: Request, exc: Exception) -> Response:
    logger.error("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "An internal error occurred.")


# Starlette looks handlers up along the exception's MRO, so subclasses land on their family's row.
EXCEPTION_HANDLERS: Mapping[Any, ExceptionHandler] = {
    InputError: _input_error,
    NotFound: _not_found,
    RateLimited: _rate_limited,
    StoreError: _store_error,
    HTTPException: _http_exception,
    ClientDisconnect: _client_disconnect,
    NeiromatriusError: _internal_error,
    Exception: _internal_error,
}
