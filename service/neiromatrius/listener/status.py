"""The listener's own small HTTP server: ``/metrics`` for Prometheus and ``/health`` for Docker.

It runs inside the listener's event loop and leaves the signals to the listener, which decides
when the process stops.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..config import Settings
from ..core.ports import QueueMonitor
from ..errors import ConfigError
from ..metrics import Metrics
from ..web.errors import EXCEPTION_HANDLERS
from ..web.health import database_answers
from ..web.metrics import metrics_endpoint


def status_app(settings: Settings, metrics: Metrics, monitor: QueueMonitor, running: Callable[[], bool]) -> Starlette:
    async def health(request: Request) -> Response:
        database = "ok" if await database_answers(monitor.ping) else "unavailable"
        ok = running() and database == "ok"
        body = {
            "status": "ok" if ok else "degraded",
            "database": database,
            "listener": "running" if running() else "stopping",
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics_endpoint(settings, metrics, monitor.queue_stats), methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)


class _SignalFreeServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the listener owns SIGTERM and SIGINT


class StatusServer:
    def __init__(self, app: Starlette, host: str, port: int) -> None:
        self._socket = _bind(host, port)
        config = uvicorn.Config(app, log_config=None, access_log=False, ws="none", lifespan="off")
        self._server = _SignalFreeServer(config)
        self.port: int = self._socket.getsockname()[1]

    async def serve(self) -> None:
        await self._server.serve(sockets=[self._socket])

    def stop(self) -> None:
        self._server.should_exit = True


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError("LISTENER_METRICS_PORT", f"cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.listen(64)
    sock.setblocking(False)
    return sock
