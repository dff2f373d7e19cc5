"""The endpoints: message intake and read-back, health checks and the OpenAPI document."""

from __future__ import annotations

import logging
import math

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..config import Settings
from ..core.models import IncomingMessage, MessageState
from ..core.ratelimit import IntakeLimits
from ..errors import IdempotencyConflict, RateLimited
from ..telegram.webhook import TelegramWebhook
from ..web.auth import intake_key, require_intake_key
from ..web.errors import RETRY_AFTER_SECONDS
from ..web.health import database_answers
from .openapi import openapi_document
from .schemas import (
    IDEMPOTENCY_KEY,
    DatabaseHealth,
    Health,
    accepted_body,
    parse_intake,
    parse_message_id,
    prefers_async,
    view_body,
)
from .services import ApiServices

logger = logging.getLogger(__name__)


class Messages:
    def __init__(self, settings: Settings, services: ApiServices) -> None:
        self.settings = settings
        self.services = services
        self.key = intake_key(settings)
        self.limits = IntakeLimits.per_minute(
            settings.rate_limit_client_per_minute, settings.rate_limit_chat_per_minute
        )

    async def create(self, request: Request) -> Response:
        # Every check comes before the first write; reading the body first enforces the size limit.
        # A malformed or unauthorised request is refused before it spends a token; a throttled one before
        # the URL guard's DNS lookup, so a flood costs no outbound work. A retry spends a token too.
        body = await request.body()
        require_intake_key(request.headers, self.key)
        incoming = parse_intake(request.headers, body, self.settings)
        respond_async = prefers_async(request.headers.getlist("prefer"))
        await self._take_token(incoming.message)
        await self.services.url_guard.check(incoming.webhook_url)
        intake = await self.services.store.intake(incoming.message)
        request.state.message_id = intake.id
        if intake.conflict:
            raise IdempotencyConflict(IDEMPOTENCY_KEY, "this key was used before with a different request")
        if respond_async or self.settings.reply_wait_seconds == 0:
            return _accepted(intake.id, intake.conversation_id, intake.state, preference_applied=respond_async)
        if not intake.state.terminal:
            await self.services.waiter.wait(intake.id, self.settings.reply_wait_seconds)
        view = await self.services.store.get(intake.id)
        if view.state.terminal:
            return JSONResponse(view_body(view))
        return _accepted(view.id, view.conversation_id, view.state)

    async def _take_token(self, message: IncomingMessage) -> None:
        limits = self.limits.for_message(message.client_id, message.platform, message.chat_id)
        decision = await self.services.limiter.acquire(limits)
        if not decision.allowed:
            raise RateLimited(decision.scope or "client", whole_seconds(decision.retry_after))

    async def read(self, request: Request) -> Response:
        require_intake_key(request.headers, self.key)
        message_id = parse_message_id(request.path_params["message_id"])
        request.state.message_id = message_id
        view = await self.services.store.get(message_id)
        return JSONResponse(view_body(view))


class HealthRoutes:
    def __init__(self, services: ApiServices) -> None:
        self.services = services

    async def service(self, request: Request) -> Response:
        redis = await self.services.cache_status()
        if await database_answers(self.services.store.ping):
            return JSONResponse(Health.model_validate({"status": "ok", "database": "ok", "redis": redis}).model_dump())
        body = Health.model_validate({"status": "degraded", "database": "unavailable", "redis": redis}).model_dump()
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    async def database(self, request: Request) -> Response:
        if await database_answers(self.services.store.ping):
            return JSONResponse(DatabaseHealth(status="ok", database="connected").model_dump())
        body = DatabaseHealth(status="error", database="unavailable").model_dump()
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def build_routes(settings: Settings, services: ApiServices) -> list[Route]:
    messages = Messages(settings, services)
    health = HealthRoutes(services)
    document = openapi_document(settings)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    routes = [
        # Both spellings are served: a redirect would make clients re-send the POST body.
        Route("/api/messages/", messages.create, methods=["POST"]),
        Route("/api/messages", messages.create, methods=["POST"]),
        Route("/api/messages/{message_id}", messages.read, methods=["GET"]),
        Route("/health", health.service, methods=["GET"]),
        Route("/api/health/db", health.database, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    if settings.telegram_enabled:
        routes.append(
            Route("/api/telegram/webhook", TelegramWebhook(settings, services.store).receive, methods=["POST"])
        )
    return routes


def whole_seconds(seconds: float) -> int:
    """A ``Retry-After`` value: whole seconds, rounded up (to the millisecond first: float noise), at least 1."""
    return max(1, math.ceil(round(seconds, 3)))


def _accepted(
    message_id: str, conversation_id: str, state: MessageState, *, preference_applied: bool = False
) -> Response:
    headers = {"Location": f"/api/messages/{message_id}"}
    if preference_applied:
        headers["Preference-Applied"] = "respond-async"
    return JSONResponse(accepted_body(message_id, conversation_id, state), status_code=202, headers=headers)
