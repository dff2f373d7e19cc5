"""``GET /metrics`` and the per-request series behind it.

Requests are labelled by route template (``/api/messages/{message_id}``), never by raw path, so a
client cannot grow the series without bound.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from ..config import Settings
from ..core.models import QueueStats
from ..metrics import CONTENT_TYPE, Metrics
from .auth import require_bearer

UNMATCHED = "unmatched"


class RequestMetrics:
    """Counts and times requests by route template (the access log calls ``observe`` for each)."""

    def __init__(self, metrics: Metrics, routes: Sequence[BaseRoute]) -> None:
        self.metrics = metrics
        self.templates = [(route, route.path) for route in routes if isinstance(route, Route)]

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = self._template(scope)
        self.metrics.http_requests.labels(scope["method"], route, str(status)).inc()
        self.metrics.http_duration.labels(scope["method"], route).observe(seconds)

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
