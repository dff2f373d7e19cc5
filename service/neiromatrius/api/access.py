"""One summary line per request: method, path, status, milliseconds and the message id, if any;
and, when given a ``RequestMetrics``, the same request counted there.

Never bodies, query strings or headers: they may hold customers' words and keys.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..web.metrics import RequestMetrics

logger = logging.getLogger(__name__)


class AccessLog:
    def __init__(self, app: ASGIApp, metrics: RequestMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before it responds

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            elapsed = time.perf_counter() - started
            if self.metrics is not None:
                self.metrics.observe(scope, status, elapsed)
            elapsed_ms = elapsed * 1000
            message_id = scope.get("state", {}).get("message_id")
            suffix = f" message={message_id}" if message_id else ""
            logger.info("%s %s %d %.1fms%s", scope["method"], _path(scope), status, elapsed_ms, suffix)


def _path(scope: Scope) -> str:
    # The raw path keeps percent-escapes, so a crafted path cannot forge a line break in the log.
    raw = scope.get("raw_path")
    if isinstance(raw, bytes):
        return raw.split(b"?", 1)[0].decode("ascii", "replace")
    return str(scope["path"])
