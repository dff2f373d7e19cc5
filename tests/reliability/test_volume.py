"""Four listener processes and 1,000 messages through the real API: each claimed, answered and delivered once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import asyncpg
import httpx

from tests.conftest import MakeReceiver, Stack
from tests.e2e.conftest import StartService, listener_env, send
from tests.support.waiting import eventually

LISTENERS = 4
CONVERSATIONS = 100
PER_CONVERSATION = 10
TOTAL = CONVERSATIONS * PER_CONVERSATION
BOUND = 90.0
SENDERS = 20


async def test_four_listeners_answer_and_deliver_1000_messages_exactly_once_in_conversation_order(
    stack: Stack,
    api: Any,
    start_service: StartService,
    receiver: MakeReceiver,
    db: asyncpg.Connection,
    client_id: str,
    worker_queue_clear: None,
) -> None:
    api_url, _ = api(RATE_LIMIT_CLIENT_PER_MINUTE="0", RATE_LIMIT_CHAT_PER_MINUTE="0")
    hook = await receiver()
    # The offline model: this is about claims and deliveries, not the model. The four start side by side.
    listeners = [start_service("listener", listener_env(stack)) for _ in range(LISTENERS)]
    for listener in listeners:
        listener.wait_for_line("consumers")

    started = time.monotonic()

    async def chat(http: httpx.AsyncClient, n: int) -> None:
        for i in range(PER_CONVERSATION):  # a customer writes one message after another
            await send(http, api_url, client_id, f"chat-{n:03d}", f"Сообщение {i} в чате {n}", hook.url())

    # The customers write at once, through as many connections as a small platform would hold open.
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=SENDERS)) as http:
        await asyncio.gather(*(chat(http, n) for n in range(CONVERSATIONS)))

    async def all_delivered() -> bool:
        delivered = await db.fetchval(
            "select count(*) from replies r join messages m on m.id = r.message_id"
            " where m.client_id = $1 and r.delivery_state = 'delivered'",
            client_id,
        )
        return bool(delivered == TOTAL)

    await eventually(all_delivered, BOUND, every=0.25)
    await hook.wait_for_requests(TOTAL, BOUND)
    print(
        f"\n{TOTAL} messages, {LISTENERS} listeners: sent, answered and delivered in {time.monotonic() - started:.1f}s"
    )

    rows = await db.fetch(
        "select m.id, m.conversation_id, m.state, m.attempts, m.created_at as asked, r.created_at as answered,"
        " r.id as reply_id, r.delivery_state, r.delivery_attempts,"
        " (select count(*) from replies x where x.message_id = m.id) as replies,"
        " (select count(*) from classifications k where k.message_id = m.id) as classifications"
        " from messages m left join replies r on r.message_id = m.id"
        " where m.client_id = $1 and m.direction = 'inbound'",
        client_id,
    )
    assert len(rows) == TOTAL
    # claims = replies = 1,000: each message leased once, answered once, delivered at its first attempt.
    assert Counter(row["state"] for row in rows) == {"answered": TOTAL}
    assert sum(row["attempts"] for row in rows) == TOTAL
    assert {(row["replies"], row["classifications"]) for row in rows} == {(1, 1)}
    assert {(row["delivery_state"], row["delivery_attempts"]) for row in rows} == {("delivered", 1)}
    outbound = await db.fetchval(
        "select count(*) from messages where client_id = $1 and direction = 'outbound'", client_id
    )
    assert outbound == TOTAL

    attempts = await db.fetch(
        "select a.webhook_id, a.outcome, a.worker from delivery_attempts a join replies r on r.id = a.reply_id"
        " join messages m on m.id = r.message_id where m.client_id = $1",
        client_id,
    )
    reply_ids = {str(row["reply_id"]) for row in rows}
    assert len(attempts) == TOTAL and {a["outcome"] for a in attempts} == {"delivered"}
    assert {a["webhook_id"] for a in attempts} == reply_ids
    assert len({a["worker"] for a in attempts}) == LISTENERS  # every listener took its share
    webhook_ids = Counter(request.headers["webhook-id"] for request in hook.requests)
    assert set(webhook_ids) == reply_ids and set(webhook_ids.values()) == {1}

    # Within a conversation, messages are answered in the order they were asked.
    by_conversation: dict[Any, list[asyncpg.Record]] = {}
    for row in rows:
        by_conversation.setdefault(row["conversation_id"], []).append(row)
    assert len(by_conversation) == CONVERSATIONS
    for messages in by_conversation.values():
        asked = [row["id"] for row in sorted(messages, key=lambda r: r["asked"])]
        answered = [row["id"] for row in sorted(messages, key=lambda r: r["answered"])]
        assert answered == asked
