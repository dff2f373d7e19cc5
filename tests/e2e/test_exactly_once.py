"""Every message answered exactly once: several listener processes, a listener that starts late, and
a listener killed (SIGKILL) while it holds a message."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import MakeReceiver, Stack
from tests.e2e.conftest import StartService, listener_env, send, start_listener
from tests.support.exactly_once import answered_exactly_once
from tests.support.http_receiver import Receiver, Reply
from tests.support.waiting import eventually

CONVERSATIONS = 30
PER_CONVERSATION = 10
BOUND = 120.0


@dataclass(frozen=True)
class Scenario:
    client_id: str
    api_url: str
    hook: Receiver


@pytest.fixture
async def scenario(api: Callable[..., tuple[str, Any]], receiver: MakeReceiver, clean_clients: list[str]) -> Scenario:
    """A client of this test only, the API process, and the webhook receiver its replies go to."""
    client_id = f"once-{uuid.uuid4().hex[:8]}"
    clean_clients.append(client_id)
    # 300 messages from one client within a minute: past the default client limit, not this test's subject.
    api_url, _ = api(RATE_LIMIT_CLIENT_PER_MINUTE="0")
    return Scenario(client_id, api_url, await receiver())


async def customers_write(scenario: Scenario) -> int:
    """Each of the conversations' customers writes one message after another, all at once; the total."""

    async def chat(http: httpx.AsyncClient, n: int) -> None:
        for i in range(PER_CONVERSATION):
            text = f"Сообщение {i} в чате {n}: сколько стоит?"
            await send(http, scenario.api_url, scenario.client_id, f"chat-{n:02d}", text, scenario.hook.url())

    async with httpx.AsyncClient(timeout=30) as http:
        await asyncio.gather(*(chat(http, n) for n in range(CONVERSATIONS)))
    return CONVERSATIONS * PER_CONVERSATION


async def count(db: asyncpg.Connection, client_id: str, state: str) -> int:
    return int(await db.fetchval("select count(*) from messages where client_id = $1 and state = $2", client_id, state))


async def test_two_listeners_answer_300_messages_over_30_conversations_exactly_once_and_in_order(
    stack: Stack,
    scenario: Scenario,
    start_service: StartService,
    db: asyncpg.Connection,
) -> None:
    client_id, hook = scenario.client_id, scenario.hook
    for _ in range(2):
        start_listener(start_service, listener_env(stack))
    total = await customers_write(scenario)

    async def all_answered() -> bool:
        return await count(db, client_id, "answered") == total

    await eventually(all_answered, BOUND, every=0.2)
    await hook.wait_for_requests(total, BOUND)

    rows = await db.fetch(
        "select m.id, m.conversation_id, m.created_at as asked, r.created_at as answered, m.lease_owner,"
        " (select count(*) from replies x where x.message_id = m.id) as replies,"
        " (select count(*) from classifications k where k.message_id = m.id) as classifications"
        " from messages m left join replies r on r.message_id = m.id"
        " where m.client_id = $1 and m.direction = 'inbound'",
        client_id,
    )
    assert len(rows) == total
    assert all(row["replies"] == 1 and row["classifications"] == 1 for row in rows)
    by_conversation: dict[Any, list[asyncpg.Record]] = {}
    for row in rows:
        by_conversation.setdefault(row["conversation_id"], []).append(row)
    assert len(by_conversation) == CONVERSATIONS
    for messages in by_conversation.values():
        in_asked_order = [row["id"] for row in sorted(messages, key=lambda r: r["asked"])]
        in_answered_order = [row["id"] for row in sorted(messages, key=lambda r: r["answered"])]
        assert in_answered_order == in_asked_order
    outbound = await db.fetchval(
        "select count(*) from messages where client_id = $1 and direction = 'outbound'", client_id
    )
    assert outbound == total

    # Each reply was delivered once, under its own webhook-id.
    ids = Counter(request.headers["webhook-id"] for request in hook.requests)
    assert len(ids) == total and set(ids.values()) == {1}
    payload_ids = {json.loads(request.body)["data"]["message_id"] for request in hook.requests}
    assert payload_ids == {str(row["id"]) for row in rows}


async def test_with_bursts_two_listeners_answer_300_messages_exactly_once_and_in_order(
    stack: Stack,
    scenario: Scenario,
    start_service: StartService,
    db: asyncpg.Connection,
) -> None:
    """Bursts on (a window of 0 for every platform): what arrives while a conversation's message is being
    answered is answered together by the next call, by whichever listener claims it."""
    client_id, hook = scenario.client_id, scenario.hook
    for _ in range(2):
        start_listener(start_service, listener_env(stack, BURST_WINDOW_MS="*=0"))
    total = await customers_write(scenario)

    async def all_answered() -> bool:
        return await count(db, client_id, "answered") == total

    await eventually(all_answered, BOUND, every=0.2)
    ledger = await answered_exactly_once(db, client_id)
    assert ledger.messages == total
    await hook.wait_for_requests(len(ledger.replies), BOUND)
    print(f"\n{total} messages answered by {len(ledger.replies)} replies; burst sizes {dict(ledger.bursts)}")

    # Each reply was delivered once, under its own webhook-id, naming the first message it answers.
    ids = Counter(request.headers["webhook-id"] for request in hook.requests)
    assert set(ids) == set(ledger.replies) and set(ids.values()) == {1}
    payload_ids = {json.loads(request.body)["data"]["message_id"] for request in hook.requests}
    assert payload_ids == ledger.answered_messages


async def test_with_bursts_each_conversations_backlog_is_answered_by_one_reply(
    stack: Stack,
    scenario: Scenario,
    start_service: StartService,
    db: asyncpg.Connection,
) -> None:
    client_id, api_url, hook = scenario.client_id, scenario.api_url, scenario.hook
    async with httpx.AsyncClient(timeout=30) as http:
        ids = [await send(http, api_url, client_id, f"chat-{i % 5}", f"Hello {i}", hook.url()) for i in range(25)]

    start_listener(start_service, listener_env(stack, BURST_WINDOW_MS="*=0"))

    async def all_answered() -> bool:
        return await count(db, client_id, "answered") == 25

    await eventually(all_answered, BOUND, every=0.2)
    ledger = await answered_exactly_once(db, client_id)
    assert (ledger.messages, len(ledger.replies), ledger.bursts) == (25, 5, {5: 5})
    assert ledger.answered_messages == set(ids[:5])  # each reply names its conversation's first message
    await hook.wait_for_requests(5, BOUND)
    assert {json.loads(r.body)["data"]["message_id"] for r in hook.requests} == ledger.answered_messages
    assert len(hook.requests) == 5


async def test_messages_sent_while_no_listener_runs_are_all_answered_once_one_starts(
    stack: Stack,
    scenario: Scenario,
    start_service: StartService,
    db: asyncpg.Connection,
) -> None:
    client_id, api_url, hook = scenario.client_id, scenario.api_url, scenario.hook
    async with httpx.AsyncClient(timeout=30) as http:
        ids = [await send(http, api_url, client_id, f"chat-{i % 5}", f"Hello {i}", hook.url()) for i in range(25)]
    assert await count(db, client_id, "pending") == 25

    start_listener(start_service, listener_env(stack))

    async def all_answered() -> bool:
        return await count(db, client_id, "answered") == 25

    await eventually(all_answered, BOUND, every=0.2)
    await hook.wait_for_requests(25, BOUND)
    assert {json.loads(r.body)["data"]["message_id"] for r in hook.requests} == set(ids)
    assert len(hook.requests) == 25


async def test_a_listener_killed_while_holding_a_message_leaves_it_to_another_after_the_lease(
    stack: Stack,
    scenario: Scenario,
    start_service: StartService,
    receiver: MakeReceiver,
    db: asyncpg.Connection,
) -> None:
    client_id, api_url, hook = scenario.client_id, scenario.api_url, scenario.hook
    stuck_model: Receiver = await receiver(Reply(hang=True))  # an OpenAI that takes the call and never answers
    doomed = start_listener(
        start_service,
        listener_env(
            stack, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=stuck_model.url("/v1"), OPENAI_TIMEOUT_SECONDS="60"
        ),
    )
    async with httpx.AsyncClient(timeout=30) as http:
        message_id = await send(http, api_url, client_id, "chat-1", "Где мой заказ?", hook.url())
    await stuck_model.wait_for_requests(1, BOUND)  # claimed, and the model call is in flight

    doomed.kill()
    held = await db.fetchrow("select state, lease_owner, attempts from messages where id = $1", uuid.UUID(message_id))
    assert held is not None and held["state"] == "processing" and held["lease_owner"] and held["attempts"] == 1

    start_listener(start_service, listener_env(stack))  # the offline model

    async def answered() -> Any:
        row = await db.fetchrow("select * from messages where id = $1", uuid.UUID(message_id))
        return row if row is not None and row["state"] == "answered" else None

    row = await eventually(answered, BOUND, every=0.1)
    assert row["attempts"] == 2
    assert row["lease_owner"] is None
    assert await db.fetchval("select count(*) from replies where message_id = $1", row["id"]) == 1
    [delivery] = await hook.wait_for_requests(1, BOUND)
    assert json.loads(delivery.body)["data"]["message_id"] == message_id
    model = await db.fetchval("select model from classifications where message_id = $1", row["id"])
    assert model.startswith("offline")


async def test_a_listener_stopped_gracefully_gives_its_message_back_at_once(
    stack: Stack,
    scenario: Scenario,
    start_service: StartService,
    receiver: MakeReceiver,
    db: asyncpg.Connection,
) -> None:
    client_id, api_url, hook = scenario.client_id, scenario.api_url, scenario.hook
    stuck_model: Receiver = await receiver(Reply(hang=True))
    stopping = start_listener(
        start_service,
        listener_env(
            stack, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=stuck_model.url("/v1"), OPENAI_TIMEOUT_SECONDS="60",
            LEASE_SECONDS="600", SHUTDOWN_GRACE_SECONDS="0.5",
        ),
    )  # fmt: skip
    async with httpx.AsyncClient(timeout=30) as http:
        message_id = await send(http, api_url, client_id, "chat-1", "Hello", hook.url())
    await stuck_model.wait_for_requests(1, BOUND)

    assert stopping.stop() == 0  # SIGTERM: the model call is abandoned after the grace period, the lease released
    released = await db.fetchrow("select state, lease_owner from messages where id = $1", uuid.UUID(message_id))
    assert released is not None and (released["state"], released["lease_owner"]) == ("pending", None)
    assert any("lease released" in line for line in stopping.lines)

    start_listener(start_service, listener_env(stack))  # would wait 600 s for the lease if it had not been released

    async def answered() -> bool:
        return await count(db, client_id, "answered") == 1

    await eventually(answered, BOUND, every=0.1)
    assert len(await hook.wait_for_requests(1, BOUND)) == 1
