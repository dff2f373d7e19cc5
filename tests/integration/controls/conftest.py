"""Fixtures for the conversation controls: the pipeline's RPCs as the listener calls them (service role),
and supabase-py clients signed in as operators (GoTrue-shaped tokens, operators made with SQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from postgrest import APIError
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from neiromatrius.adapters.supabase_store import SupabaseMessageStore
from neiromatrius.core.models import IncomingMessage
from tests.conftest import Stack
from tests.integration.pipeline.conftest import (  # noqa: F401  (fixtures)
    client_id,
    incoming,
    resources,
    settings,
    store,
    worker_queue_clear,
)
from tests.support.operators import Operator, Operators

ANSWER = {
    "category": "greeting", "intent": "say_hello", "sentiment": "neutral", "urgency": "low", "language": "en",
    "confidence": 0.9, "needs_human": False,
}  # fmt: skip
USAGE = {"model": "test-model", "prompt_version": "test", "prompt_tokens": 10, "completion_tokens": 5, "latency_ms": 1}


async def rpc(client: AsyncClient, name: str, params: dict[str, Any]) -> Any:
    return (await client.rpc(name, params).execute()).data


async def refused(client: AsyncClient, name: str, params: dict[str, Any]) -> APIError:
    """The APIError an RPC call raises (fails the test if the call succeeds)."""
    with pytest.raises(APIError) as caught:
        await client.rpc(name, params).execute()
    return caught.value


@dataclass
class Pipeline:
    """What the listener does, through the same RPCs, with the service role."""

    service: AsyncClient
    store: SupabaseMessageStore
    incoming: Callable[..., IncomingMessage]

    async def intake(self, content: str = "Hello!", chat: str = "chat-1", **overrides: Any) -> tuple[str, str]:
        """A customer message; returns (conversation_id, message_id)."""
        stored = await self.store.intake(self.incoming(content, chat_id=chat, **overrides))
        return stored.conversation_id, stored.id

    async def claim(self, worker: str = "w1", windows: dict[str, int] | None = None, limit: int = 10) -> list[Any]:
        params: dict[str, Any] = {"p_worker": worker, "p_limit": limit, "p_lease_seconds": 30, "p_max_attempts": 3}
        if windows is not None:
            params["p_burst_windows"] = windows
        return list(await rpc(self.service, "claim_messages", params) or [])

    async def complete(
        self, message_id: str, worker: str = "w1", reply: str = "Hi! How can I help?", state: str = "answered",
        **answer: Any,
    ) -> dict[str, Any]:  # fmt: skip
        params = {
            "p_message_id": message_id, "p_worker": worker, "p_state": state, "p_reply": reply,
            "p_classification": {**ANSWER, **answer}, "p_usage": USAGE,
        }  # fmt: skip
        result: dict[str, Any] = await rpc(self.service, "complete_message", params)
        return result

    async def answer(self, message_id: str, worker: str = "w1", **answer: Any) -> dict[str, Any]:
        """Claim (this message must be the one claimed) and complete."""
        claimed = await self.claim(worker)
        assert [row["id"] for row in claimed] == [message_id]
        return await self.complete(message_id, worker, **answer)

    async def leased(self, worker: str = "delivery") -> list[dict[str, Any]]:
        """Every reply the delivery-lease RPC hands out now."""
        params = {"p_worker": worker, "p_limit": 1000, "p_lease_seconds": 30}
        return list(await rpc(self.service, "claim_deliveries", params) or [])


@pytest.fixture
def pipeline(
    store: SupabaseMessageStore,  # noqa: F811  (pytest injects the imported fixtures by name)
    incoming: Callable[..., IncomingMessage],  # noqa: F811
    worker_queue_clear: None,  # noqa: F811
) -> Pipeline:
    return Pipeline(store._client, store, incoming)


@pytest.fixture
async def settings_row(db: asyncpg.Connection) -> AsyncIterator[Callable[..., Awaitable[None]]]:
    """Change bot_settings for one test; the original row comes back after it."""
    original = await db.fetchrow("select * from public.bot_settings")
    assert original is not None

    async def change(**values: Any) -> None:
        for column, value in values.items():
            await db.execute(f"update public.bot_settings set {column} = $1", value)

    yield change
    await db.execute(
        "update public.bot_settings set default_bot_mode = $1, auto_pause = $2, auto_pause_minutes = $3,"
        " handoff_message_enabled = $4",
        original["default_bot_mode"], original["auto_pause"], original["auto_pause_minutes"],
        original["handoff_message_enabled"],
    )  # fmt: skip


SignIn = Callable[[str], Awaitable[AsyncClient]]


@pytest.fixture
async def sign_in(stack: Stack) -> AsyncIterator[SignIn]:
    """A supabase-py client as the auth user ``sub`` (the anon key plus their access token)."""
    http = httpx.AsyncClient(timeout=15)
    made: list[AsyncClient] = []

    async def make(sub: str) -> AsyncClient:
        options = AsyncClientOptions(
            httpx_client=http, auto_refresh_token=False, persist_session=False,
            headers={"Authorization": f"Bearer {stack.user_token(sub=sub)}"},
        )  # fmt: skip
        client = await acreate_client(stack.url, stack.anon_key, options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.realtime.close()
    await http.aclose()


@pytest.fixture
async def anon(stack: Stack) -> AsyncIterator[AsyncClient]:
    async with httpx.AsyncClient(timeout=15) as http:
        options = AsyncClientOptions(httpx_client=http, auto_refresh_token=False, persist_session=False)
        client = await acreate_client(stack.url, stack.anon_key, options)
        yield client
        await client.realtime.close()


@dataclass
class SignedIn:
    operator: Operator
    client: AsyncClient

    @property
    def id(self) -> str:
        return self.operator.user_id


@pytest.fixture
async def agent(operators: Operators, sign_in: SignIn) -> SignedIn:
    made = await operators.make("agent")
    return SignedIn(made, await sign_in(made.user_id))


@pytest.fixture
async def admin(operators: Operators, sign_in: SignIn) -> SignedIn:
    made = await operators.make("admin")
    return SignedIn(made, await sign_in(made.user_id))


@pytest.fixture
async def stranger(operators: Operators, sign_in: SignIn) -> AsyncClient:
    """A signed-in auth user who is not an operator."""
    return await sign_in(await operators.user())


def new_uuid() -> str:
    return str(uuid.uuid4())
