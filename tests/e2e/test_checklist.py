"""The pre-deploy checklist's own request, end to end: the API process, a listener with OpenAI mocked
through its httpx client, the local stack, a loopback webhook receiver, and operators watching."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from postgrest import APIError
from pydantic import SecretStr
from realtime.types import RealtimePostgresChangesListenEvent as Event
from standardwebhooks import Webhook
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from neiromatrius.adapters.webhooks import webhook_secret
from neiromatrius.config import Settings
from tests.conftest import Stack
from tests.e2e.conftest import eventually, running_listener
from tests.support import openai_mock
from tests.support.http_receiver import Receiver
from tests.support.operators import Operators

CHECKLIST_CONTENT = "Привет! Тестовое сообщение"
BOUND = 15.0


class Watcher:
    """A Supabase client watching replies (and, as a control, rt_items) through Realtime."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    async def watch(self) -> None:
        ready = asyncio.Event()
        channel = self.client.channel(f"watch-{uuid.uuid4().hex[:8]}")
        channel.on_system(lambda p: ready.set() if p.message == "Subscribed to PostgreSQL" else None)
        for table in ("replies", "rt_items"):
            channel.on_postgres_changes(
                Event.Insert, schema="public", table=table,
                callback=lambda p, t=table: self.events.put_nowait((t, p["data"]["record"])),
            )  # fmt: skip
        await channel.subscribe()
        await asyncio.wait_for(ready.wait(), BOUND)

    async def next_event(self) -> tuple[str, dict[str, Any]]:
        return await asyncio.wait_for(self.events.get(), BOUND)


@pytest.fixture
async def watcher(stack: Stack) -> AsyncIterator[Callable[..., Any]]:
    clients: list[AsyncClient] = []
    async with httpx.AsyncClient(timeout=30) as http:

        async def make(token: str | None) -> Watcher:
            options = AsyncClientOptions(httpx_client=http)
            if token is not None:
                options.headers["Authorization"] = f"Bearer {token}"
            client = await acreate_client(stack.url, stack.anon_key, options)
            clients.append(client)
            if token is not None:
                await client.realtime.set_auth(token)
            w = Watcher(client)
            await w.watch()
            return w

        yield make
        for client in clients:
            await client.remove_all_channels()


@pytest.fixture
async def operator(operators: Operators) -> str:
    return (await operators.make("agent", name="E2E operator")).user_id


def checklist_headers(webhook_url: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Webhook-URL": webhook_url, "X-Platform": "test",
            "X-Chat-ID": "test-123"}  # fmt: skip


async def test_the_checklist_request_is_answered_delivered_signed_and_visible_to_operators(
    stack: Stack,
    api: Callable[..., tuple[str, Any]],
    e2e_settings: Settings,
    receiver: Callable[..., Any],
    watcher: Callable[..., Any],
    operator: str,
    db: asyncpg.Connection,
    clean_clients: list[str],
) -> None:
    clean_clients.append("test_client_001")
    await db.execute("delete from public.clients where id = 'test_client_001'")
    api_url, _ = api()
    hook: Receiver = await receiver()
    ops = await watcher(stack.user_token(sub=operator))
    anon = await watcher(None)
    settings = e2e_settings.model_copy(
        update={"openai_base_url": openai_mock.BASE_URL, "openai_api_key": SecretStr("sk-test")}
    )

    with openai_mock.mocked_openai() as openai_route:
        openai_route.mock(return_value=openai_mock.answered())
        async with running_listener(settings), httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                f"{api_url}/api/messages/",
                headers=checklist_headers(hook.url()),
                json={"client_id": "test_client_001", "content": CHECKLIST_CONTENT},
            )
            [delivery] = await hook.wait_for_requests(1)

            async def delivered() -> Any:
                return await db.fetchval("select delivery_state = 'delivered' from replies r join messages m"
                                         " on m.id = r.message_id where m.client_id = 'test_client_001'")  # fmt: skip

            await eventually(delivered)

    # The HTTP answer: 200 with the classification and the response, as the checklist expects.
    assert response.status_code == 200, response.text
    body = response.json()
    expected = openai_mock.answer()
    assert body["state"] == "answered"
    assert body["response"] == expected["reply"]
    assert body["classification"] == {k: expected[k] for k in body["classification"]}
    assert set(body["classification"]) == {
        "category", "intent", "sentiment", "urgency", "language", "confidence", "needs_human",
    }  # fmt: skip
    message_id = body["id"]

    # One OpenAI call, with the customer's message and the strict schema.
    assert openai_route.call_count == 1
    sent = json.loads(openai_route.calls.last.request.content)
    assert sent["messages"][-1] == {"role": "user", "content": CHECKLIST_CONTENT}
    assert sent["response_format"]["json_schema"]["strict"] is True

    # One delivery, signed per Standard Webhooks and verified by the reference library.
    payload = Webhook(webhook_secret(settings)).verify(delivery.body, delivery.headers)
    assert payload["type"] == "message.replied"
    assert payload["data"]["message_id"] == message_id
    assert payload["data"]["response"] == expected["reply"]
    assert delivery.headers["webhook-id"] == payload["data"]["reply_id"]
    assert len(hook.requests) == 1

    # The rows, table by table.
    message = await db.fetchrow("select * from messages where id = $1", uuid.UUID(message_id))
    assert message is not None
    assert (message["client_id"], message["direction"], message["state"], message["content"], message["attempts"]) == (
        "test_client_001", "inbound", "answered", CHECKLIST_CONTENT, 1,
    )  # fmt: skip
    conversation = await db.fetchrow("select * from conversations where id = $1", message["conversation_id"])
    assert conversation is not None
    assert (conversation["platform"], conversation["chat_id"], conversation["webhook_url"]) == (
        "test", "test-123", hook.url(),
    )  # fmt: skip
    k = await db.fetchrow("select * from classifications where message_id = $1", message["id"])
    assert k is not None
    assert (k["category"], k["model"], k["prompt_tokens"], k["completion_tokens"]) == (
        "greeting", openai_mock.MODEL, 321, 54,
    )  # fmt: skip
    reply = await db.fetchrow("select * from replies where message_id = $1", message["id"])
    assert reply is not None
    assert (reply["content"], reply["delivery_state"], reply["delivery_attempts"]) == (
        expected["reply"],
        "delivered",
        1,
    )
    outbound = await db.fetchrow("select * from messages where reply_to = $1", message["id"])
    assert outbound is not None and outbound["content"] == expected["reply"] and outbound["direction"] == "outbound"
    attempts = await db.fetch("select outcome, status_code, webhook_id from delivery_attempts where reply_id = $1",
                              reply["id"])  # fmt: skip
    assert [tuple(a) for a in attempts] == [("delivered", 200, str(reply["id"]))]

    # The operator sees the reply live and through the Data API; anon sees nothing.
    table, record = await ops.next_event()
    assert (table, record["message_id"], record["content"]) == ("replies", message_id, expected["reply"])
    seen = await ops.client.table("replies").select("content").eq("message_id", message_id).execute()
    assert seen.data == [{"content": expected["reply"]}]
    await db.execute("insert into public.rt_items (label) values ('control after the reply')")
    table, record = await anon.next_event()
    assert (table, record["label"]) == ("rt_items", "control after the reply")  # the reply never reached anon
    with pytest.raises(APIError) as refused:
        await anon.client.table("replies").select("id").eq("message_id", message_id).execute()
    assert refused.value.code == "42501"
