"""``GET /metrics`` and the per-request series behind it.

Requests are labelled by route template (``/api/messages/{message_id}``), never by raw path, so a
client cannot grow the series without bound.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings
from ..core.models import QueueStats
from ..metrics import CONTENT_TYPE, Metrics
from .auth import require_bearer

UNMATCHED = "unmatched"


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = [(route, route.path) for route in routes if isinstance(route, Route)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = self._template(scope)
            self.metrics.http_requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.http_duration.labels(scope["method"], route).observe(time.perf_counter() - started)

    def _template(self, scope: Scope) -> str:
        for route, template in self.templates:
            if route.matches(scope)[0] is Match.FULL:
                return template
        return UNMATCHED


def metrics_endpoint(
    settings: Settings, metrics: Metrics, queue_stats: Callable[[], Awaitable[QueueStats]] | None
) -> Callable[[Request], Awaitable[Response]]:
    """The exposition, behind ``Authorization: Bearer <METRICS_TOKEN>`` when a token is set."""
    token = settings.metrics_token.get_secret_value().encode() or None if settings.metrics_token else None

    async def endpoint(request: Request) -> Response:
        require_bearer(request.headers, token)
        return Response(await metrics.render(queue_stats), media_type=CONTENT_TYPE)

    return endpoint
