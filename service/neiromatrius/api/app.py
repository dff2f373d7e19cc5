"""The API's application factory and its lifespan: wait for the database, report the cache, start."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route

from ..config import Settings
from ..core.backoff import Backoff
from ..core.models import WEBHOOK_URL_HEADER
from ..core.ports import MessageIntake
from ..errors import StoreError, StoreUnavailable
from ..logs import icon
from ..web.errors import EXCEPTION_HANDLERS
from ..web.metrics import RequestMetrics, metrics_endpoint
from .access import AccessLog
from .limits import BodySizeLimit
from .routes import build_routes
from .services import ApiServices

logger = logging.getLogger(__name__)

CORS_HEADERS = [
    "Authorization",
    "Content-Type",
    "Prefer",
    "Idempotency-Key",
    WEBHOOK_URL_HEADER,
    "X-Platform",
    "X-Chat-ID",
]
FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 2.0


def create_app(settings: Settings, services: ApiServices) -> Starlette:
    origins = list(settings.allowed_origins)
    routes = build_routes(settings, services)
    request_metrics = None
    if services.metrics is not None:
        routes.append(Route("/metrics", metrics_endpoint(settings, services.metrics, services.queue_stats)))
        request_metrics = RequestMetrics(services.metrics, list(routes))
    middleware = [
        Middleware(AccessLog, metrics=request_metrics),
        Middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=CORS_HEADERS,
            # Browsers refuse credentials with a wildcard origin; never offer that pair.
            allow_credentials="*" not in origins,
            expose_headers=["Location", "Preference-Applied", "Retry-After"],
        ),
        Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=_lifespan(services),
    )


def _lifespan(services: ApiServices) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await wait_for_database(services.store, services.startup_timeout)
        logger.info("Database connection established and responsive", extra=icon("✅"))
        if await services.cache_status() == "ok":
            logger.info("Redis cache connected", extra=icon("✅"))
        else:
            logger.warning("Redis cache unavailable, using in-memory fallback", extra=icon("⚠️"))
        if services.on_startup is not None:
            await services.on_startup()
        logger.info("Starting up application...", extra=icon("🚀"))
        try:
            yield
        finally:
            logger.info("Shutting down application...")
            if services.on_shutdown is not None:
                await services.on_shutdown()

    return lifespan


async def wait_for_database(store: MessageIntake, within: float) -> None:
    """Ping until the database answers, backing off; raise ``StoreUnavailable`` after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    backoff = Backoff(FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS)
    while True:
        try:
            async with asyncio.timeout(max(deadline - loop.time(), FIRST_RETRY_SECONDS)):
                await store.ping()
            return
        except (StoreError, TimeoutError) as exc:
            remaining = deadline - loop.time()
            if remaining <= 0:
                logger.error("Database connection failed: no answer within %.0fs (%r)", within, exc)
                raise StoreUnavailable(f"the database did not answer within {within:.0f}s") from exc
            pause = min(backoff.next(), remaining)
            logger.warning("Database not answering yet (%r); retrying in %.1fs", exc, pause)
            await asyncio.sleep(pause)
