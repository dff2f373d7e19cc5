"""The ASGI app PostgREST would be: routes ``/``, ``/<relation>`` and ``/rpc/<function>``.

It sees paths after the gateway's ``/rest/v1`` mount; Kong-style key checks and CORS happen there.
"""

from __future__ import annotations

import json
import logging
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .auth import Authenticator
from .engine import Engine, PlanAnswer
from .errors import JSON_UTF8, RestError
from .read import read
from .reply import Reply, error_reply
from .request import build_request
from .rpc import rpc
from .write import write

log = logging.getLogger(__name__)

_WRITES = ("POST", "PATCH", "PUT", "DELETE")
_ALLOW = "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE"
#: Errors that only mean "not in the schema cache": raised before any SQL runs, so a retry is safe.
_CACHE_MISSES = frozenset({"PGRST200", "PGRST202", "PGRST204"})


def route_path(scope: Scope) -> str:
    """The path below the mount point (Starlette keeps the full path and sets ``root_path``)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :] or "/"
    return path or "/"


class RestApp:
    def __init__(self, engine: Engine, authenticator: Authenticator, schemas: tuple[str, ...]) -> None:
        self.engine = engine
        self.authenticator = authenticator
        self.schemas = schemas

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        request = Request(scope, receive)
        try:
            reply = await self.handle(request, route_path(scope))
        except RestError as exc:
            reply = error_reply(exc)
        log.debug(
            "%s %s -> %d in %.1f ms",
            scope["method"],
            scope["path"],
            reply.status,
            (time.perf_counter() - started) * 1000,
        )
        await Response(reply.body, status_code=reply.status, headers=reply.headers)(scope, receive, send)

    async def handle(self, request: Request, path: str) -> Reply:
        method = request.method
        if method == "OPTIONS":
            return self._options(path)
        body = await request.body() if method in _WRITES else b""
        query = request.scope.get("query_string", b"").decode("utf-8", "replace")
        req = build_request(
            method, path, request.scope["headers"], query, body, self.authenticator, self.schemas,
            plan_enabled=self.engine.plan_enabled,
        )  # fmt: skip
        if path == "/":
            return self._root(req.schema)
        if not req.target or "/" in req.target:
            raise _not_found()
        if req.is_rpc:
            action = rpc
        elif method in ("GET", "HEAD"):
            action = read
        elif method in _WRITES:
            action = write
        else:
            raise RestError(405, "PGRST117", f"Unsupported HTTP method: {method}")
        try:
            try:
                return await action(self.engine, req)
            except RestError as exc:
                if exc.code not in _CACHE_MISSES:
                    raise
            # The schema may have changed since the cache last loaded: reload once and try again.
            await self.engine.fresh()
            return await action(self.engine, req)
        except PlanAnswer as plan:
            return Reply(200, {"Content-Type": req.media.content_type}, plan.body.encode())

    def _options(self, path: str) -> Reply:
        """``Allow`` as PostgREST computes it: RPCs by volatility, relations by what they support."""
        allow = _ALLOW
        if path.startswith("/rpc/"):
            fns = self.engine.catalog.functions.get((self.schemas[0], path[len("/rpc/") :]), [])
            allow = "OPTIONS,POST" if fns and all(f.volatility == "v" for f in fns) else "OPTIONS,GET,HEAD,POST"
        return Reply(200, {"Allow": allow, "Access-Control-Allow-Origin": "*"})

    def _root(self, schema: str) -> Reply:
        """A minimal OpenAPI description: enough for tools that list the exposed tables."""
        names = sorted(self.engine.catalog.names_in(schema))
        doc = {
            "swagger": "2.0",
            "info": {"title": "Local PostgREST-compatible API", "version": "12.2.12"},
            "basePath": "/",
            "paths": {"/": {}, **{f"/{name}": {} for name in names}},
        }
        return Reply(200, {"Content-Type": "application/openapi+json; charset=utf-8"}, json.dumps(doc).encode())


def _not_found() -> RestError:
    error = RestError(404, "PGRST125", "Invalid path specified in request URL")
    error.headers["Content-Type"] = JSON_UTF8
    return error
