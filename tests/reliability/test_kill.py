"""A listener SIGKILLed at each step of a message's way leaves no message unanswered and nothing doubled.

A fault-injecting listener (``fault_listener``, the real listener with one wrapper) takes the message
and kills itself at the chosen step; a normal ``neiromatrius listener`` started after the kill finishes
the work once the dead one's lease runs out. The user-visible result is always the same: the message
answered once (one classification, one reply), the reply delivered, every webhook for it signed and
carrying the reply's id. What a crash may cost: a model call made again (killed after the model
answered, before the write) and a webhook sent again with the same ``webhook-id`` (killed after the
receiver had it, before the attempt was recorded) — receivers deduplicate on that id.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from standardwebhooks import Webhook

from neiromatrius.adapters.webhooks import webhook_secret
from neiromatrius.config import Settings
from tests.conftest import MakeReceiver, Stack
from tests.e2e.conftest import StartService, listener_env, send, start_listener
from tests.reliability.conftest import REPO_ROOT, MakeOpenAI
from tests.reliability.fault_listener import STAGES
from tests.support.exactly_once import answered_exactly_once
from tests.support.waiting import eventually

LEASE_SECONDS = 3.0
SWEEP_SECONDS = 0.5
DELIVERY_POLL_SECONDS = 0.2
WEBHOOK_TIMEOUT_SECONDS = 1.0
DELIVERY_LEASE_SECONDS = WEBHOOK_TIMEOUT_SECONDS * 2 + 5  # composition.listener's delivery lease
SLACK = 5.0  # the rescuing listener's own work (a claim, a model call, a write, a POST) on a busy machine


def env(stack: Stack, openai_url: str, **overrides: str) -> dict[str, str]:
    return listener_env(
        stack,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=openai_url,
        OPENAI_MAX_RETRIES="0",
        LEASE_SECONDS=str(LEASE_SECONDS),
        SWEEP_INTERVAL_SECONDS=str(SWEEP_SECONDS),
        DELIVERY_POLL_SECONDS=str(DELIVERY_POLL_SECONDS),
        WEBHOOK_TIMEOUT_SECONDS=str(WEBHOOK_TIMEOUT_SECONDS),
        **overrides,
    )


async def snapshot(db: asyncpg.Connection, message_id: uuid.UUID) -> dict[str, Any]:
    row = await db.fetchrow(
        "select m.state, m.attempts, m.lease_owner, m.lease_expires_at,"
        " (select count(*) from classifications k where k.message_id = m.id) as classifications,"
        " (select count(*) from replies r where r.message_id = m.id) as replies,"
        " (select count(*) from messages o where o.reply_to = m.id) as outbound,"
        " r.id as reply_id, r.delivery_state, r.delivery_attempts, r.next_attempt_at, r.delivered_at,"
        " (select count(*) from delivery_attempts a where a.reply_id = r.id) as recorded"
        " from messages m left join replies r on r.message_id = m.id where m.id = $1",
        message_id,
    )
    assert row is not None
    return dict(row)


# What the dead listener left behind, step by step: (state, replies, delivery state, model calls, webhooks).
LEFT_BEHIND = {
    "after_claim": ("processing", 0, None, 0, 0),
    "after_model": ("processing", 0, None, 1, 0),
    "after_reply": ("answered", 1, "delivering", 1, 0),  # the completion leased the delivery to the dead listener
    "during_delivery": ("answered", 1, "delivering", 1, 1),
}
# Where the dead listener held the reply's delivery lease, taken over once it runs out.
DELIVERY_LEASED = {"after_reply", "during_delivery"}
# And once another listener has finished: (message claims, model calls, webhooks received, attempts recorded).
FINISHED = {
    "after_claim": (2, 1, 1, 1),
    "after_model": (2, 2, 1, 1),  # the model is asked again: its first answer died with the process
    "after_reply": (1, 1, 1, 1),
    "during_delivery": (1, 1, 2, 1),  # the receiver saw the webhook twice, under one webhook-id
}


@pytest.mark.parametrize("stage", STAGES)
async def test_a_listener_killed_at_each_step_leaves_the_message_answered_and_delivered_once(
    stage: str,
    stack: Stack,
    api: Any,
    start_service: StartService,
    receiver: MakeReceiver,
    fake_openai: MakeOpenAI,
    db: asyncpg.Connection,
    client_id: str,
    worker_queue_clear: None,
    e2e_settings: Settings,
) -> None:
    api_url, _ = api()
    hook = await receiver()
    model = await fake_openai()
    doomed = start_listener(
        start_service,
        env(stack, model.base_url, FAULT_STAGE=stage, LISTENER_CONCURRENCY="1", PYTHONPATH=str(REPO_ROOT)),
        module="tests.reliability.fault_listener",
    )
    content = f"Где мой заказ? ({stage} {uuid.uuid4().hex[:6]})"
    async with httpx.AsyncClient(timeout=30) as http:
        message_id = uuid.UUID(await send(http, api_url, client_id, "chat-1", content, hook.url()))

    assert await asyncio.to_thread(doomed.process.wait, 60) == -signal.SIGKILL
    assert f"fault_listener: SIGKILL {stage}" in doomed.output()
    left = await snapshot(db, message_id)
    state, replies, delivery_state, calls, webhooks = LEFT_BEHIND[stage]
    assert (left["state"], left["replies"], left["delivery_state"]) == (state, replies, delivery_state)
    assert (len(model.calls_for(content)), len(hook.requests), left["recorded"] or 0) == (calls, webhooks, 0)

    start_listener(start_service, env(stack, model.base_url))
    # The takeover waits for the dead listener's lease (the message's, or the delivery's) and one sweep or poll:
    # the bounded wait below fails the test if it takes longer. Counted from the new listener's start, so a
    # slow start-up on a loaded machine is not charged to the takeover.
    lease, poll = (DELIVERY_LEASE_SECONDS, DELIVERY_POLL_SECONDS) if stage in DELIVERY_LEASED else (
        LEASE_SECONDS, SWEEP_SECONDS
    )  # fmt: skip
    bound = lease + poll + SLACK

    async def done() -> dict[str, Any] | None:
        row = await snapshot(db, message_id)
        return row if row["delivery_state"] == "delivered" else None

    final = await eventually(done, bound, every=0.1)

    # One answer, stored once, delivered; nobody took the message or the delivery before the dead lease ran out.
    assert (final["state"], final["lease_owner"]) == ("answered", None)
    assert (final["classifications"], final["replies"], final["outbound"]) == (1, 1, 1)
    claims, model_calls, received, recorded = FINISHED[stage]
    assert final["attempts"] == claims
    assert len(model.calls_for(content)) == model_calls
    await hook.wait_for_requests(received, bound)
    assert len(hook.requests) == received
    assert final["recorded"] == recorded
    expired = left["next_attempt_at"] if stage in DELIVERY_LEASED else left["lease_expires_at"]
    if expired is not None:
        assert final["delivered_at"] >= expired
    outcomes = await db.fetch(
        "select outcome, webhook_id from delivery_attempts where reply_id = $1", final["reply_id"]
    )
    assert [(a["outcome"], a["webhook_id"]) for a in outcomes] == [("delivered", str(final["reply_id"]))]

    # Every webhook the receiver saw for this reply carries the reply's id and a valid signature.
    signer = Webhook(webhook_secret(e2e_settings))  # the secret the listeners sign with (same SECRET_KEY)
    assert {request.headers["webhook-id"] for request in hook.requests} == {str(final["reply_id"])}
    for request in hook.requests:
        assert signer.verify(request.body, request.headers)["data"]["message_id"] == str(message_id)


async def test_a_listener_killed_after_the_model_answered_a_burst_leaves_the_whole_burst_answered_once(
    stack: Stack,
    api: Any,
    start_service: StartService,
    receiver: MakeReceiver,
    fake_openai: MakeOpenAI,
    db: asyncpg.Connection,
    client_id: str,
    worker_queue_clear: None,
) -> None:
    api_url, _ = api()
    hook = await receiver()
    model = await fake_openai()
    lines = [f"{text} ({uuid.uuid4().hex[:6]})" for text in ("Hello", "my order is late", "order 77, please check")]
    async with httpx.AsyncClient(timeout=30) as http:  # written before any listener runs: one burst
        ids = [await send(http, api_url, client_id, "chat-1", line, hook.url()) for line in lines]

    doomed = start_listener(
        start_service,
        env(
            stack,
            model.base_url,
            FAULT_STAGE="after_model",
            LISTENER_CONCURRENCY="1",
            PYTHONPATH=str(REPO_ROOT),
            BURST_WINDOW_MS="*=0",
        ),
        module="tests.reliability.fault_listener",
    )
    assert await asyncio.to_thread(doomed.process.wait, 60) == -signal.SIGKILL
    held = await db.fetch("select state from messages where id = any($1::uuid[])", [uuid.UUID(i) for i in ids])
    assert [row["state"] for row in held] == ["processing"] * 3  # the whole burst was leased together

    start_listener(start_service, env(stack, model.base_url, BURST_WINDOW_MS="*=0"))

    async def answered() -> bool:
        count = await db.fetchval(
            "select count(*) from messages where id = any($1::uuid[]) and state = 'answered'",
            [uuid.UUID(i) for i in ids],
        )
        return bool(count == 3)

    await eventually(answered, LEASE_SECONDS + SWEEP_SECONDS + SLACK, every=0.1)
    ledger = await answered_exactly_once(db, client_id)
    assert (ledger.messages, ledger.bursts, ledger.answered_messages) == (3, {3: 1}, {ids[0]})
    [delivery] = await hook.wait_for_requests(1, DELIVERY_LEASE_SECONDS + SLACK)
    assert delivery.headers["webhook-id"] == next(iter(ledger.replies))
    # The model was asked twice (its first answer died with the process), each time with the whole burst.
    assert len(model.calls_for(lines[-1])) == 2 and model.calls_for(lines[0]) == []
    assert len(hook.requests) == 1
