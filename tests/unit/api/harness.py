"""The API under test: built from explicit settings and fakes, lifespan running, driven over ASGI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette

from neiromatrius.api import ApiServices, create_app
from neiromatrius.config import Settings
from tests.support.fakes import FakeCache, FakeMessageIntake, FakeRateLimiter, FakeReplyWaiter, FakeUrlGuard

ORIGIN = "https://app.example.com"
BLOCKED_URL = "http://169.254.169.254/latest/meta-data"

# The request from the seed's checklist (section "Тест API").
CHECKLIST_HEADERS = {
    "Content-Type": "application/json",
    "X-Webhook-URL": "https://test-webhook.com/test",
    "X-Platform": "test",
    "X-Chat-ID": "test-123",
}
CHECKLIST_BODY = {"client_id": "test_client_001", "content": "Привет! Тестовое сообщение"}


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "supabase_url": "http://127.0.0.1:1",
        "supabase_service_role_key": "x",
        "secret_key": "s" * 32,
        "intake_api_key": None,
        "allowed_origins": [ORIGIN],
        "reply_wait_seconds": 25.0,
        "max_content_chars": 4000,
        "max_body_bytes": 65536,
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


def headers(**changes: str | bytes | None) -> dict[str, str | bytes]:
    """The checklist's headers with some replaced or (None) removed: ``headers(X_Platform=None)``."""
    result: dict[str, str | bytes] = dict(CHECKLIST_HEADERS)
    for name, value in changes.items():
        header = name.replace("_", "-")
        result.pop(header, None)
        if value is not None:
            result[header] = value
    return result


@dataclass
class Api:
    app: Starlette
    client: httpx.AsyncClient
    settings: Settings
    store: FakeMessageIntake
    waiter: FakeReplyWaiter
    guard: FakeUrlGuard
    cache: FakeCache
    limiter: FakeRateLimiter

    async def post(self, body: Any = None, *, path: str = "/api/messages/", **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("headers", CHECKLIST_HEADERS)
        if "content" not in kwargs:
            kwargs["json"] = CHECKLIST_BODY if body is None else body
        return await self.client.post(path, **kwargs)


def build_services(
    store: FakeMessageIntake, waiter: FakeReplyWaiter, guard: FakeUrlGuard, cache: FakeCache, limiter: FakeRateLimiter
) -> ApiServices:
    return ApiServices(
        store=store, waiter=waiter, url_guard=guard, limiter=limiter, cache_status=cache, startup_timeout=1.0
    )


def make_client(
    settings: Settings, services: ApiServices, *, raise_app_exceptions: bool = True
) -> tuple[Starlette, httpx.AsyncClient]:
    app = create_app(settings, services)
    transport = httpx.ASGITransport(app, raise_app_exceptions=raise_app_exceptions)
    return app, httpx.AsyncClient(transport=transport, base_url="http://testserver")
