"""Fixtures for the pipeline against the stack: settings, the service's own Supabase client, the database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from neiromatrius import composition
from neiromatrius.adapters.supabase_store import SupabaseMessageStore
from neiromatrius.config import Settings
from neiromatrius.core.models import IncomingMessage
from tests.conftest import Stack


def pipeline_settings(stack: Stack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "supabase_url": stack.url,
        "supabase_service_role_key": stack.service_key,
        "supabase_anon_key": stack.anon_key,
        "secret_key": "test-secret-key-" + "x" * 32,
        "allow_private_webhooks": True,
        "reply_wait_seconds": 10,
        "sweep_interval_seconds": 0.5,
        "delivery_poll_seconds": 0.2,
        "lease_seconds": 5,
        "webhook_retry_schedule": (0.2, 0.2, 0.2),
        "webhook_timeout_seconds": 2,
        "openai_max_retries": 2,
        "openai_timeout_seconds": 2,
        # respx intercepts httpx's own transport; the processes the e2e tests start use aiohttp's (the default).
        "http_transport": "httpx",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(stack: Stack) -> Settings:
    return pipeline_settings(stack)


@pytest.fixture
async def resources(settings: Settings) -> AsyncIterator[composition.Resources]:
    async with composition.open_resources(settings) as res:
        yield res


@pytest.fixture
def store(resources: composition.Resources) -> SupabaseMessageStore:
    return SupabaseMessageStore(resources.supabase)


@pytest.fixture
async def client_id(db: asyncpg.Connection) -> AsyncIterator[str]:
    """A client of this test only; everything it wrote goes when the client row does (cascades)."""
    value = f"test-{uuid.uuid4().hex[:12]}"
    yield value
    await db.execute("delete from public.clients where id = $1", value)


@pytest.fixture
def incoming(client_id: str) -> Callable[..., IncomingMessage]:
    def make(content: str = "Привет! Тестовое сообщение", **overrides: Any) -> IncomingMessage:
        values: dict[str, Any] = {
            "client_id": client_id,
            "platform": "test",
            "chat_id": "chat-1",
            "content": content,
            "webhook_url": "http://127.0.0.1:9/hook",
        }
        values.update(overrides)
        return IncomingMessage(**values)

    return make


@pytest.fixture
async def worker_queue_clear(db: asyncpg.Connection) -> None:
    """Claims are global: leave no other test's unfinished messages for this test's workers to find."""
    await db.execute("update public.messages set state = 'failed' where state in ('pending', 'processing')")
