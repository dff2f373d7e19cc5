"""The Realtime component: the websocket endpoint, the broadcast API, and the change feed's lifecycle.

Paths are those Realtime sees behind Kong (``/realtime/v1`` stripped): ``/websocket`` and
``/api/broadcast``. Connect-time checks are Kong's key-auth (the ``apikey`` must be the anon or
service_role key) and then Realtime's (a JWT with ``role`` and ``exp``), both refusing the upgrade
with a JSON body, as the real pair does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from ..context import StackContext
from . import auth
from .changes import ChangeFeed
from .channels import Hub
from .connection import Connection, Services
from .dispatcher import Dispatcher
from .serializers import negotiate
from .subscriptions import Registry

log = logging.getLogger(__name__)


class RealtimeComponent:
    """``app`` serves sockets; ``start()``/``stop()`` run the change feed and close sockets."""

    def __init__(self, ctx: StackContext, publication: str = "supabase_realtime") -> None:
        self.ctx = ctx
        self.services = Services(ctx.keys.jwt_secret, ctx.pool, Registry(), Hub(), publication)
        self.feed = ChangeFeed(ctx.admin_dsn, publication)
        self.connections: set[Connection] = set()
        self._dispatcher: asyncio.Task[None] | None = None
        self.app: ASGIApp = Starlette(
            routes=[
                WebSocketRoute("/websocket", self._websocket),
                Route("/api/broadcast", self._broadcast_batch, methods=["POST"]),
                Route("/api/broadcast/{topic:path}/events/{event}", self._broadcast_one, methods=["POST"]),
            ]
        )

    async def start(self) -> None:
        await self.feed.start()
        dispatcher = Dispatcher(self.ctx.pool, self.feed, self.services.registry)
        self._dispatcher = asyncio.create_task(dispatcher.run(), name="realtime dispatcher")

    async def stop(self) -> None:
        await asyncio.gather(*(connection.close() for connection in list(self.connections)))
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        await self.feed.stop()

    async def _websocket(self, websocket: WebSocket) -> None:
        token = websocket.headers.get("x-api-key") or websocket.query_params.get("apikey")
        vsn = negotiate(websocket.query_params.get("vsn"))
        if token is None:
            refusal: JSONResponse | None = JSONResponse({"message": "No API key found in request"}, 401)
        else:
            refusal = self._refusal(token)
        if refusal is None and vsn is None:
            refusal = JSONResponse({"error": "Unsupported protocol version"}, 400)
        if refusal is not None or token is None or vsn is None:
            await _deny(websocket, refusal)
            return
        await websocket.accept()
        connection = Connection(websocket, vsn, token, self.services)
        self.connections.add(connection)
        try:
            await connection.serve()
        finally:
            self.connections.discard(connection)

    def _refusal(self, token: str) -> JSONResponse | None:
        """Kong's key-auth (an exact anon or service_role key), then Realtime's JWT rules."""
        if self.ctx.keys.role_of(token) is None:
            return JSONResponse({"message": "Invalid authentication credentials"}, 401)
        try:
            auth.verify(token, self.services.jwt_secret)
        except auth.AuthError as exc:
            message = "Token has expired" if exc.message.startswith("Token has expired") else exc.message
            return JSONResponse({"error": message}, 401)
        return None

    def _authorized(self, request: Request) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else request.headers.get("apikey")
        try:
            auth.verify(token, self.services.jwt_secret)
        except auth.AuthError as exc:
            return JSONResponse({"error": exc.message}, 401)
        return None

    async def _broadcast_batch(self, request: Request) -> Response:
        if (denied := self._authorized(request)) is not None:
            return denied
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return JSONResponse({"error": "invalid JSON body"}, 400)
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            return JSONResponse({"errors": {"messages": ["can't be blank"]}}, 422)
        for message in messages:
            if isinstance(message, dict) and isinstance(message.get("topic"), str) and not message.get("private"):
                self._relay(message["topic"], message.get("event"), message.get("payload"), None)
        return Response(status_code=202)

    async def _broadcast_one(self, request: Request) -> Response:
        if (denied := self._authorized(request)) is not None:
            return denied
        if request.query_params.get("private") == "true":
            return JSONResponse({"error": "Private broadcasts are not supported by the local stack"}, 403)
        body = await request.body()
        binary: bytes | None = None
        payload: Any = None
        if request.headers.get("content-type", "").startswith("application/octet-stream"):
            binary = body
        else:
            try:
                payload = json.loads(body) if body else None
            except json.JSONDecodeError:
                return JSONResponse({"error": "invalid JSON body"}, 400)
        self._relay(request.path_params["topic"], request.path_params["event"], payload, binary)
        return Response(status_code=202)

    def _relay(self, topic: str, event: Any, payload: Any, binary: bytes | None) -> None:
        message = {"type": "broadcast", "event": event, "payload": payload}
        self.services.hub.broadcast((topic, False), message, binary, sender=None)


async def _deny(websocket: WebSocket, response: JSONResponse | None) -> None:
    try:
        await websocket.send_denial_response(response or JSONResponse({"error": "Forbidden"}, 403))
    except RuntimeError:  # the server lacks the denial-response extension: a plain refusal
        await websocket.close(1008)
