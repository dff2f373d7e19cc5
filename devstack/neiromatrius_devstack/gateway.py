"""One port for the whole stack, shaped like Supabase's Kong: CORS, key-auth, then the routes.

Kong's key-auth compares the ``apikey`` header (or query parameter) exactly with the anon and
service_role keys before any request reaches PostgREST; the Realtime side checks its own socket.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .component import Component
from .context import Keys

ALLOW_METHODS = "GET, POST, PATCH, PUT, DELETE, OPTIONS, HEAD"
EXPOSE_HEADERS = (
    "Content-Encoding, Content-Location, Content-Range, Content-Type, Date, Location, Server, "
    "Transfer-Encoding, Range-Unit, Content-Profile, Preference-Applied, Proxy-Status"
)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class KongMiddleware:
    """CORS on every HTTP response, answer preflights, and require a known API key."""

    def __init__(self, app: ASGIApp, keys: Keys, open_paths: Sequence[str] = ("/health",)) -> None:
        self.app = app
        self.keys = keys
        self.open_paths = tuple(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        if scope["method"] == "OPTIONS" and origin is not None:
            await self._preflight(scope, receive, send)
            return
        if not scope["path"].startswith(self.open_paths):
            denial = self._key_denial(scope)
            if denial is not None:
                await _with_cors(denial, origin)(scope, receive, send)
                return
        await self.app(scope, receive, _cors_send(send, origin))

    def _key_denial(self, scope: Scope) -> Response | None:
        key = _header(scope, b"apikey")
        if key is None:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            key = query.get("apikey")
        if key is None:
            return JSONResponse(
                {"message": "No API key found in request"}, 401, headers={"WWW-Authenticate": 'Key realm="kong"'}
            )
        if self.keys.role_of(key) is None:
            return JSONResponse({"message": "Invalid authentication credentials"}, 401)
        return None

    async def _preflight(self, scope: Scope, receive: Receive, send: Send) -> None:
        requested = _header(scope, b"access-control-request-headers") or ""
        allowed = ", ".join(h for h in ["Authorization", requested] if h)
        response = Response(
            status_code=200,
            headers={
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": ALLOW_METHODS,
                "Access-Control-Allow-Headers": allowed,
                "Access-Control-Max-Age": "86400",
            },
        )
        await response(scope, receive, send)


def _with_cors(response: Response, origin: str | None) -> Response:
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    return response


def _cors_send(send: Send, origin: str | None) -> Send:
    if origin is None:
        return send

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", [])]
            headers.append((b"access-control-allow-origin", b"*"))
            headers.append((b"access-control-expose-headers", EXPOSE_HEADERS.encode()))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


async def _health(request: Request) -> Response:
    return Response(json.dumps({"status": "ok"}), media_type="application/json")


def build_gateway(keys: Keys, rest: Component, realtime: Component, auth: Component | None = None) -> ASGIApp:
    """The Starlette app serving ``/rest/v1``, ``/realtime/v1`` and ``/auth/v1``; its lifespan drives the parts."""
    parts = [rest, realtime] + ([auth] if auth is not None else [])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started: list[Component] = []
        try:
            for part in parts:
                await part.start()
                started.append(part)
            yield
        finally:
            for part in reversed(started):
                await part.stop()

    app = Starlette(
        routes=[
            Route("/health", _health),
            Mount("/rest/v1", app=rest.app),
            Mount("/realtime/v1", app=realtime.app),
            *([Mount("/auth/v1", app=auth.app)] if auth is not None else []),
        ],
        lifespan=lifespan,
    )
    return KongMiddleware(app, keys)
