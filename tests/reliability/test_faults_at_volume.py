"""Faults at volume: some conversations meet a model that rate-limits, fails or hangs, or receivers that fail
or hang, while many others are healthy. Nothing is lost (every message ends answered, handed off or failed,
by the product's rules), the whole run is bounded, and the healthy conversations finish while the
faulty ones are still struggling."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

import asyncpg
import httpx
from standardwebhooks import Webhook

from neiromatrius.adapters.webhooks import webhook_secret
from neiromatrius.config import Settings
from tests.conftest import MakeReceiver, Stack
from tests.e2e.conftest import StartService, listener_env, send
from tests.reliability.conftest import MakeOpenAI
from tests.support.fake_openai import answer, failure
from tests.support.http_receiver import Reply
from tests.support.waiting import eventually

LISTENERS = 2
HEALTHY_CONVERSATIONS = 20
SENDERS = 20

# The model: each call gives up after OPENAI_TIMEOUT_SECONDS, and a message after 1 + OPENAI_MAX_RETRIES calls.
OPENAI_TIMEOUT = 1.0
OPENAI_RETRIES = 2
RETRY_AFTER = 1
MODEL_FAULTS = {"hang": 2, "5xx": 2, "429": 2}  # conversations of each kind
FAULTY_MESSAGES = 3  # per faulty conversation: a hanging one struggles for ~3 x 4.5 s
HEALTHY_MESSAGES = 4

# Webhooks: a hanging attempt is cut at WEBHOOK_TIMEOUT; a reply is tried 1 + len(schedule) times.
WEBHOOK_TIMEOUT = 6.0
WEBHOOK_SCHEDULE = (0.2,)
HANGING_RECEIVERS = 6  # more than the delivery loops of both listeners together
FAILING_RECEIVERS = 3


def model_script(content: str, nth: int) -> Reply:
    if content.startswith("[hang]"):
        return answer(hang=True)
    if content.startswith("[5xx]"):
        return failure(503, "server_is_overloaded")
    if content.startswith("[429]") and nth == 1:
        return failure(429, "rate_limit_exceeded", (("retry-after", str(RETRY_AFTER)),))
    return answer()


def start_listeners(start_service: StartService, env: dict[str, str]) -> None:
    listeners = [start_service("listener", env) for _ in range(LISTENERS)]
    for listener in listeners:
        listener.wait_for_line("consumers")


async def send_all(
    api_url: str, client_id: str, chats: Iterable[tuple[str, str, int]], hook_for: dict[str, str]
) -> dict[str, list[str]]:
    """Send ``count`` messages to each (kind, chat, count), one after another per chat; ids by kind, in order."""
    sent: dict[str, list[str]] = {}
    gate = asyncio.Semaphore(SENDERS)

    async def chat(http: httpx.AsyncClient, kind: str, chat_id: str, count: int) -> None:
        for i in range(count):
            async with gate:
                text = f"[{kind}] {chat_id} message {i}"
                sent.setdefault(kind, []).append(await send(http, api_url, client_id, chat_id, text, hook_for[kind]))

    async with httpx.AsyncClient(timeout=30) as http:
        await asyncio.gather(*(chat(http, kind, chat_id, count) for kind, chat_id, count in chats))
    return sent


async def messages(db: asyncpg.Connection, ids: Iterable[str]) -> list[asyncpg.Record]:
    return await db.fetch(
        "select m.id, m.content, m.state, m.last_error, m.finished_at, r.id as reply_id, r.delivery_state,"
        " r.delivery_attempts from messages m left join replies r on r.message_id = m.id where m.id = any($1::uuid[])",
        [uuid.UUID(i) for i in ids],
    )


async def test_a_failing_or_hanging_model_for_some_conversations_loses_nothing_and_holds_up_no_other(
    stack: Stack,
    api: Any,
    start_service: StartService,
    receiver: MakeReceiver,
    fake_openai: MakeOpenAI,
    db: asyncpg.Connection,
    client_id: str,
    worker_queue_clear: None,
) -> None:
    api_url, _ = api(RATE_LIMIT_CLIENT_PER_MINUTE="0", RATE_LIMIT_CHAT_PER_MINUTE="0")
    hook = await receiver()
    model = await fake_openai(model_script)
    env = listener_env(
        stack, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=model.base_url, OPENAI_TIMEOUT_SECONDS=str(OPENAI_TIMEOUT),
        OPENAI_MAX_RETRIES=str(OPENAI_RETRIES),
    )  # fmt: skip
    start_listeners(start_service, env)

    # The faulty conversations write first, so their trouble is under way before the healthy ones arrive.
    faulty = [(kind, f"{kind}-{n}", FAULTY_MESSAGES) for kind, count in MODEL_FAULTS.items() for n in range(count)]
    healthy = [("ok", f"ok-{n}", HEALTHY_MESSAGES) for n in range(HEALTHY_CONVERSATIONS)]
    hooks = dict.fromkeys([*MODEL_FAULTS, "ok"], hook.url())
    sent = await send_all(api_url, client_id, faulty, hooks)
    sent |= await send_all(api_url, client_id, healthy, hooks)
    every_id = [message_id for ids in sent.values() for message_id in ids]

    async def healthy_answered() -> bool:
        return all(row["state"] == "answered" for row in await messages(db, sent["ok"]))

    await eventually(healthy_answered, 30.0, every=0.1)
    # ... while the hanging model still holds its conversations.
    hanging_unfinished = [row for row in await messages(db, sent["hang"]) if row["finished_at"] is None]
    assert hanging_unfinished

    # Bounded: a hanging message gives up after (1 + retries) timeouts and the backoff between them.
    per_message = (1 + OPENAI_RETRIES) * OPENAI_TIMEOUT + 0.5 + 1.0

    async def all_finished() -> bool:
        return all(row["finished_at"] is not None for row in await messages(db, every_id))

    await eventually(all_finished, FAULTY_MESSAGES * per_message + 15.0, every=0.2)

    rows = {str(row["id"]): row for row in await messages(db, every_id)}
    by_kind = {kind: [rows[i] for i in ids] for kind, ids in sent.items()}
    calls = {kind: [len(model.calls_for(row["content"])) for row in kind_rows] for kind, kind_rows in by_kind.items()}
    attempts = 1 + OPENAI_RETRIES
    for kind, last in (("hang", "timeout"), ("5xx", "status 503")):
        assert {(row["state"], row["reply_id"]) for row in by_kind[kind]} == {("failed", None)}
        assert all(row["last_error"].startswith("model_unavailable") for row in by_kind[kind])
        assert all(row["last_error"].endswith(f"(last: {last})") for row in by_kind[kind])
        assert set(calls[kind]) == {attempts}
    # A rate limit is waited out as the model asked (retry-after), then answered.
    assert {row["state"] for row in by_kind["429"]} == {"answered"}
    assert set(calls["429"]) == {2}
    for row in by_kind["429"]:
        first, second = model.calls_for(row["content"])
        assert second.at - first.at >= RETRY_AFTER
    assert {row["state"] for row in by_kind["ok"]} == {"answered"} and set(calls["ok"]) == {1}
    # Every answered message was delivered, once; failed ones sent nothing.
    answered = [row for row in rows.values() if row["state"] == "answered"]
    await hook.wait_for_requests(len(answered), 30.0)
    await eventually(lambda: _all_delivered(db, [str(row["id"]) for row in answered]), 15.0, every=0.1)
    assert Counter(r.headers["webhook-id"] for r in hook.requests) == Counter(str(row["reply_id"]) for row in answered)
    # The healthy conversations were done before the hanging ones.
    assert max(row["finished_at"] for row in by_kind["ok"]) < max(row["finished_at"] for row in by_kind["hang"])


async def _all_delivered(db: asyncpg.Connection, ids: list[str]) -> bool:
    return {row["delivery_state"] for row in await messages(db, ids)} == {"delivered"}


async def test_hanging_and_failing_receivers_for_some_conversations_do_not_delay_deliveries_to_others(
    stack: Stack,
    api: Any,
    start_service: StartService,
    receiver: MakeReceiver,
    db: asyncpg.Connection,
    client_id: str,
    e2e_settings: Settings,
    worker_queue_clear: None,
) -> None:
    api_url, _ = api(RATE_LIMIT_CLIENT_PER_MINUTE="0", RATE_LIMIT_CHAT_PER_MINUTE="0")
    hanging = await receiver(Reply(hang=True))
    failing = await receiver(Reply(503))
    healthy = await receiver()
    schedule = ",".join(str(delay) for delay in WEBHOOK_SCHEDULE)
    env = listener_env(stack, WEBHOOK_TIMEOUT_SECONDS=str(WEBHOOK_TIMEOUT), WEBHOOK_RETRY_SCHEDULE=schedule)
    start_listeners(start_service, env)  # the offline model
    hooks = {"hang": hanging.url(), "fail": failing.url(), "ok": healthy.url()}

    faulty = [("hang", f"hang-{n}", 1) for n in range(HANGING_RECEIVERS)]
    faulty += [("fail", f"fail-{n}", 1) for n in range(FAILING_RECEIVERS)]
    sent = await send_all(api_url, client_id, faulty, hooks)
    # Every delivery loop may now be waiting on a receiver that never answers ...
    await hanging.wait_for_requests(HANGING_RECEIVERS, 30.0)
    sent |= await send_all(api_url, client_id, [("ok", f"ok-{n}", 2) for n in range(HEALTHY_CONVERSATIONS)], hooks)

    async def healthy_delivered() -> bool:
        return await _all_delivered(db, sent["ok"])

    await eventually(healthy_delivered, 30.0, every=0.1)
    # ... and yet the healthy replies all went out before the first of those attempts was given up.
    hanging_rows = await messages(db, sent["hang"])
    recorded = await db.fetchval(
        "select count(*) from delivery_attempts where reply_id = any($1::uuid[])",
        [row["reply_id"] for row in hanging_rows],
    )
    assert recorded == 0

    attempts = 1 + len(WEBHOOK_SCHEDULE)
    faulty_ids = sent["hang"] + sent["fail"]

    async def faulty_given_up() -> bool:
        return {row["delivery_state"] for row in await messages(db, faulty_ids)} == {"failed"}

    await eventually(faulty_given_up, attempts * (WEBHOOK_TIMEOUT + 1.0) + 15.0, every=0.2)

    rows = {str(row["id"]): row for row in await messages(db, [i for ids in sent.values() for i in ids])}
    assert {row["state"] for row in rows.values()} == {"answered"}
    log = await db.fetch(
        "select r.message_id, a.outcome, a.status_code, a.error, a.webhook_id from delivery_attempts a"
        " join replies r on r.id = a.reply_id where r.message_id = any($1::uuid[]) order by a.attempt",
        [uuid.UUID(i) for i in rows],
    )
    outcomes: dict[str, list[tuple[str, int | None]]] = {}
    for entry in log:
        outcomes.setdefault(str(entry["message_id"]), []).append((entry["outcome"], entry["status_code"]))
        assert entry["webhook_id"] == str(rows[str(entry["message_id"])]["reply_id"])
    tried_and_failed = [("retry", None)] * (attempts - 1) + [("failed", None)]
    assert all(outcomes[i] == tried_and_failed for i in sent["hang"])
    assert all(outcomes[i] == [("retry", 503)] * (attempts - 1) + [("failed", 503)] for i in sent["fail"])
    assert all(outcomes[i] == [("delivered", 200)] for i in sent["ok"])
    assert len(hanging.requests) == attempts * HANGING_RECEIVERS
    assert len(failing.requests) == attempts * FAILING_RECEIVERS
    # The healthy receiver got each reply once, signed, under the reply's id.
    signer = Webhook(webhook_secret(e2e_settings))
    assert sorted(r.headers["webhook-id"] for r in healthy.requests) == sorted(
        str(rows[i]["reply_id"]) for i in sent["ok"]
    )
    assert all(signer.verify(r.body, r.headers)["type"] == "message.replied" for r in healthy.requests)
