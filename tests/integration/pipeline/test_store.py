"""The pipeline's SQL functions through SupabaseMessageStore (supabase-py → PostgREST → Postgres)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from neiromatrius.adapters.supabase_store import SupabaseMessageStore
from neiromatrius.core.models import (
    Classification,
    Completion,
    DeliveryAttempt,
    DeliveryJob,
    DeliveryOutcome,
    IncomingMessage,
    MessageState,
    Outcome,
    Triage,
    Usage,
)
from neiromatrius.errors import LeaseLost, NotFound, StoreError, StoreUnavailable
from tests.conftest import Stack
from tests.support.waiting import eventually

pytestmark = pytest.mark.usefixtures("worker_queue_clear")

Make = Callable[..., IncomingMessage]


def triage(reply: str = "Здравствуйте! Чем могу помочь?", needs_human: bool = False) -> Triage:
    return Triage(
        classification=Classification(
            category="greeting", intent="say_hello", sentiment="positive", urgency="low", language="ru",
            confidence=0.9, needs_human=needs_human,
        ),
        reply=reply,
        usage=Usage(model="test-model", prompt_version="v-test", prompt_tokens=12, completion_tokens=7, latency_ms=42),
    )  # fmt: skip


async def test_intake_stores_client_conversation_and_pending_message(
    store: SupabaseMessageStore, incoming: Make, db: asyncpg.Connection, client_id: str
) -> None:
    intake = await store.intake(incoming(webhook_url="https://example.com/hook"))

    assert intake.created and not intake.conflict and intake.state is MessageState.PENDING
    row = await db.fetchrow(
        "select m.*, c.platform, c.chat_id, c.webhook_url from messages m join conversations c"
        " on c.id = m.conversation_id where m.id = $1",
        intake.id,
    )
    assert row is not None
    assert (row["client_id"], row["direction"], row["state"], row["attempts"]) == (client_id, "inbound", "pending", 0)
    assert (row["platform"], row["chat_id"], row["webhook_url"]) == ("test", "chat-1", "https://example.com/hook")
    assert str(row["conversation_id"]) == intake.conversation_id


async def test_same_chat_is_one_conversation_and_other_clients_get_their_own(
    store: SupabaseMessageStore, incoming: Make, db: asyncpg.Connection
) -> None:
    first = await store.intake(incoming("one"))
    second = await store.intake(incoming("two"))
    other_client = f"{first.id[:8]}-other"
    try:
        other = await store.intake(incoming("three", client_id=other_client))
        assert first.conversation_id == second.conversation_id
        assert other.conversation_id != first.conversation_id  # same platform + chat id, another client
    finally:
        await db.execute("delete from clients where id = $1", other_client)


async def test_idempotency_key_returns_the_first_message_and_flags_a_different_body(
    store: SupabaseMessageStore, incoming: Make, db: asyncpg.Connection, client_id: str
) -> None:
    first = await store.intake(incoming(idempotency_key="key-00000001", fingerprint="f1"))
    retry = await store.intake(incoming(idempotency_key="key-00000001", fingerprint="f1"))
    reused = await store.intake(incoming("something else", idempotency_key="key-00000001", fingerprint="f2"))

    assert (retry.id, retry.created, retry.conflict) == (first.id, False, False)
    assert (reused.id, reused.created, reused.conflict) == (first.id, False, True)
    assert await db.fetchval("select count(*) from messages where client_id = $1", client_id) == 1


async def test_a_retry_or_a_refused_reuse_of_a_key_writes_nothing(
    store: SupabaseMessageStore, incoming: Make, db: asyncpg.Connection, client_id: str
) -> None:
    first = await store.intake(incoming(idempotency_key="key-00000002", fingerprint="f1"))
    before = await db.fetchrow(
        "select webhook_url, updated_at from conversations where id = $1::uuid", first.conversation_id
    )

    retry = await store.intake(
        incoming(idempotency_key="key-00000002", fingerprint="f1", webhook_url="http://127.0.0.1:9/other")
    )
    reused = await store.intake(incoming(idempotency_key="key-00000002", fingerprint="f1", chat_id="another-chat"))

    assert (retry.id, retry.conflict) == (first.id, False)
    assert (reused.id, reused.conflict) == (first.id, True)  # the same body in another chat is another request
    conversations = await db.fetch("select chat_id from conversations where client_id = $1", client_id)
    assert [row["chat_id"] for row in conversations] == ["chat-1"]  # no row for the refused request's chat
    after = await db.fetchrow(
        "select webhook_url, updated_at from conversations where id = $1::uuid", first.conversation_id
    )
    assert after == before  # the retry did not touch the conversation


async def test_a_message_to_a_known_conversation_writes_it_once_and_a_new_webhook_url_is_kept(
    store: SupabaseMessageStore, incoming: Make, db: asyncpg.Connection
) -> None:
    # Every row version of the conversation is one UPDATE event for each console watching the inbox.
    await db.execute(
        "create table test_conversation_writes (n serial, conversation_id uuid, preview text, updated_at timestamptz)"
    )
    await db.execute(
        "create function test_count_conversation_writes() returns trigger language plpgsql as $$ begin"
        " insert into public.test_conversation_writes (conversation_id, preview, updated_at)"
        " values (new.id, new.last_message_preview, new.updated_at);"
        " return null; end $$"
    )
    await db.execute(
        "create trigger test_count_conversation_writes after update on conversations for each row"
        " execute function test_count_conversation_writes()"
    )
    try:
        first = await store.intake(incoming("one", webhook_url="http://127.0.0.1:9/a"))
        await store.intake(incoming("two", webhook_url="http://127.0.0.1:9/a"))
        await store.intake(incoming("three", webhook_url=None))  # no URL: the conversation keeps its own
        await store.intake(incoming("four", webhook_url="http://127.0.0.1:9/b"))
        writes = await db.fetch(
            "select preview, updated_at from test_conversation_writes where conversation_id = $1::uuid order by n",
            first.conversation_id,
        )
    finally:
        await db.execute("drop trigger test_count_conversation_writes on conversations")
        await db.execute("drop function test_count_conversation_writes()")
        await db.execute("drop table test_conversation_writes")
    # Inserted with the first message, then one write per message; the new URL is one write more.
    assert [w["preview"] for w in writes] == ["one", "two", "three", "three", "four"]
    moved = [w["updated_at"] for w in writes if w["preview"] in ("one", "two")]
    assert moved[0] < moved[1]  # "two" needed no upsert: its message moved updated_at
    row = await db.fetchrow(
        "select webhook_url, unread_count, last_message_preview from conversations where id = $1::uuid",
        first.conversation_id,
    )
    assert row is not None and tuple(row) == ("http://127.0.0.1:9/b", 4, "four")


async def test_a_message_to_a_known_conversation_takes_its_time_once_it_holds_the_conversation(
    store: SupabaseMessageStore, incoming: Make, db: asyncpg.Connection, stack: Stack
) -> None:
    # created_at (clock_timestamp) orders a conversation's messages as they commit only if each intake holds
    # the conversation's row while it inserts, as the upsert did: a known one is locked without a write.
    first = await store.intake(incoming("one"))
    holder = await asyncpg.connect(stack.database_url)
    try:
        async with holder.transaction():
            await holder.execute("select from conversations where id = $1::uuid for update", first.conversation_id)
            second = asyncio.create_task(store.intake(incoming("two")))
            await eventually(
                lambda: db.fetchval(
                    "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
                    " and query like '%intake_message%'"
                )
            )
            released_at = await holder.fetchval("select clock_timestamp()")
        created_at = await db.fetchval("select created_at from messages where id = $1::uuid", (await second).id)
    finally:
        await holder.close()
    assert created_at > released_at


async def test_concurrent_retries_with_one_key_store_one_message(
    store: SupabaseMessageStore, incoming: Make, db: asyncpg.Connection, client_id: str
) -> None:
    message = incoming(idempotency_key="key-concurrent", fingerprint="f")
    results = await asyncio.gather(*(store.intake(message) for _ in range(10)))

    assert len({r.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert await db.fetchval("select count(*) from messages where client_id = $1", client_id) == 1


async def test_a_retry_that_reads_the_conversation_before_the_first_request_commits_is_no_conflict(
    stack: Stack, client_id: str
) -> None:
    """The interleaving behind one 422 in ten concurrent retries, made deterministic with a lock queue.

    intake_message reads the conversation, then the message, each statement with its own snapshot. The
    retry must read the conversation while the first request is uncommitted and the message after it
    committed: a third connection queues an exclusive lock on messages behind the first request, so the
    retry's message read waits until that request has committed.
    """
    call = (
        "select public.intake_message($1, 'test', 'chat-1', 'Привет', 'http://127.0.0.1:9/hook', 'key-race', null, 'f')"
    )
    first, gate, retry = [await asyncpg.connect(stack.database_url) for _ in range(3)]
    try:
        # The retry's session compiles the function first (a rolled-back call): compiling it locks messages
        # for the %rowtype variable, and the wait must fall on the message read, not before the first read.
        await retry.execute("begin")
        await retry.fetchval(call, client_id)
        await retry.execute("rollback")
        await first.execute("begin")
        created = json.loads(await first.fetchval(call, client_id))
        await gate.execute("begin")
        gate_lock = asyncio.create_task(gate.execute("lock table public.messages in access exclusive mode"))
        await eventually(lambda: _waits_for_a_lock(first, gate.get_server_pid()), bound=10)
        retried = asyncio.create_task(retry.fetchval(call, client_id))
        await eventually(lambda: _waits_for_a_lock(first, retry.get_server_pid()), bound=10)
        await first.execute("commit")
        await gate_lock
        await gate.execute("rollback")
        answer = json.loads(await retried)
    finally:
        for conn in (first, gate, retry):
            await conn.close()

    assert created["created"] is True
    assert answer == {**created, "created": False, "conflict": False}


async def _waits_for_a_lock(conn: asyncpg.Connection, pid: int) -> bool:
    return bool(await conn.fetchval("select exists (select from pg_locks where pid = $1 and not granted)", pid))


async def test_platform_message_id_deduplicates_within_the_conversation(
    store: SupabaseMessageStore, incoming: Make
) -> None:
    first = await store.intake(incoming(platform_message_id="1001", fingerprint="f"))
    again = await store.intake(incoming(platform_message_id="1001", fingerprint="f"))
    elsewhere = await store.intake(incoming(platform_message_id="1001", chat_id="chat-2", fingerprint="f"))

    assert again.id == first.id and not again.created
    assert elsewhere.id != first.id and elsewhere.created


async def test_claim_takes_the_oldest_message_of_each_conversation_only(
    store: SupabaseMessageStore, incoming: Make
) -> None:
    a1 = await store.intake(incoming("a1", chat_id="a"))
    await store.intake(incoming("a2", chat_id="a"))
    b1 = await store.intake(incoming("b1", chat_id="b"))

    claimed = await store.claim("w1", 10, 30, 3)
    assert [m.id for m in claimed] == [a1.id, b1.id]
    assert all(m.attempts == 1 for m in claimed)
    assert await store.claim("w2", 10, 30, 3) == []  # a2 waits until a1 is finished


async def test_next_message_of_a_conversation_is_claimable_once_the_first_is_done(
    store: SupabaseMessageStore, incoming: Make
) -> None:
    await store.intake(incoming("a1"))
    a2 = await store.intake(incoming("a2"))
    [first] = await store.claim("w1", 10, 30, 3)
    await store.complete(first.id, "w1", triage(), MessageState.ANSWERED)

    [second] = await store.claim("w2", 10, 30, 3)
    assert second.id == a2.id
    context = await store.context(second, 20)
    assert [(c.role, c.content) for c in context] == [("user", "a1"), ("assistant", "Здравствуйте! Чем могу помочь?")]


async def test_a_claim_with_a_context_limit_brings_the_same_context_the_listener_would_read(
    store: SupabaseMessageStore, incoming: Make
) -> None:
    for text in ("a1", "a2", "a3"):
        await store.intake(incoming(text))
        [claimed] = await store.claim("w1", 10, 30, 3)
        await store.complete(claimed.id, "w1", triage(f"reply to {text}"), MessageState.ANSWERED)
    await store.intake(incoming("a4"))
    await store.intake(incoming("a5"))  # after the head: not context (it is the head's burst, or later)
    bringing = SupabaseMessageStore(store._client, context_limit=4)

    [head] = await bringing.claim("w2", 10, 30, 3)

    assert head.content == "a4" and head.context is not None
    assert [(c.role, c.content) for c in head.context] == [  # the newest four, oldest first
        ("user", "a2"), ("assistant", "reply to a2"), ("user", "a3"), ("assistant", "reply to a3"),
    ]  # fmt: skip
    assert list(head.context) == await store.context(head, 4)  # what the select it replaces answers


async def test_without_a_context_limit_a_claim_brings_none(store: SupabaseMessageStore, incoming: Make) -> None:
    await store.intake(incoming("b1"))
    [claimed] = await store.claim("w1", 10, 30, 3)
    assert claimed.context is None


async def test_concurrent_claims_never_share_a_message(store: SupabaseMessageStore, incoming: Make) -> None:
    for i in range(20):
        await store.intake(incoming(f"m{i}", chat_id=f"chat-{i}"))

    batches = await asyncio.gather(*(store.claim(f"w{i}", 3, 30, 3) for i in range(8)))
    ids = [m.id for batch in batches for m in batch]
    assert len(ids) == len(set(ids)) == 20


async def test_an_expired_lease_is_taken_over_and_the_old_worker_is_fenced_off(
    store: SupabaseMessageStore, incoming: Make
) -> None:
    intake = await store.intake(incoming())
    [mine] = await store.claim("w1", 1, 0, 3)  # a lease that has already run out

    [theirs] = await store.claim("w2", 1, 30, 3)
    assert theirs.id == intake.id and theirs.attempts == 2
    assert not await store.extend_lease(intake.id, "w1", 30)
    with pytest.raises(LeaseLost):
        await store.complete(mine.id, "w1", triage(), MessageState.ANSWERED)
    await store.complete(theirs.id, "w2", triage(), MessageState.ANSWERED)
    assert (await store.get(intake.id)).state is MessageState.ANSWERED


async def test_a_message_whose_workers_keep_dying_is_failed_after_max_attempts(
    store: SupabaseMessageStore, incoming: Make
) -> None:
    intake = await store.intake(incoming())
    for _ in range(2):
        assert len(await store.claim("w", 1, 0, 2)) == 1
    assert await store.claim("w", 1, 0, 2) == []

    view = await store.get(intake.id)
    assert view.state is MessageState.FAILED
    assert view.last_error == "lease expired after 2 attempts"


async def test_complete_writes_classification_reply_and_state_in_one_go_and_only_once(
    store: SupabaseMessageStore, incoming: Make, db: asyncpg.Connection
) -> None:
    intake = await store.intake(incoming())
    [claimed] = await store.claim("w1", 1, 30, 3)

    done = await store.complete(claimed.id, "w1", triage(), MessageState.ANSWERED)
    again = await store.complete(claimed.id, "w1", triage("other"), MessageState.ANSWERED)

    assert (done.outcome, done.message_ids) == (Outcome.SENT, (intake.id,))
    assert (again.reply_id, again.outcome) == (done.reply_id, Outcome.SENT)
    view = await store.get(intake.id)
    assert view.state is MessageState.ANSWERED and view.response == "Здравствуйте! Чем могу помочь?"
    assert view.classification is not None and view.classification.category == "greeting"
    assert view.model == "test-model"
    k = await db.fetchrow("select * from classifications where message_id = $1", intake.id)
    assert k is not None
    assert (k["model"], k["prompt_version"], k["prompt_tokens"], k["completion_tokens"], k["latency_ms"]) == (
        "test-model", "v-test", 12, 7, 42,
    )  # fmt: skip
    assert await db.fetchval("select count(*) from replies where message_id = $1", intake.id) == 1
    outbound = await db.fetchrow("select * from messages where reply_to = $1", intake.id)
    assert outbound is not None and outbound["direction"] == "outbound" and outbound["state"] is None
    reply = await db.fetchrow("select * from replies where id = $1", done.reply_id)
    assert reply is not None and reply["delivery_state"] == "pending" and reply["outbound_message_id"] == outbound["id"]


async def test_finish_without_reply_keeps_the_reason(store: SupabaseMessageStore, incoming: Make) -> None:
    intake = await store.intake(incoming())
    [claimed] = await store.claim("w1", 1, 30, 3)
    await store.finish_without_reply(claimed.id, "w1", MessageState.HANDOFF, "unusable_answer: refused")

    view = await store.get(intake.id)
    assert (view.state, view.last_error, view.response) == (MessageState.HANDOFF, "unusable_answer: refused", None)
    with pytest.raises(LeaseLost):
        await store.finish_without_reply(claimed.id, "w1", MessageState.FAILED, "again")


async def test_release_makes_the_message_claimable_at_once(store: SupabaseMessageStore, incoming: Make) -> None:
    intake = await store.intake(incoming())
    [claimed] = await store.claim("w1", 1, 300, 3)
    await store.release(claimed.id, "w1")

    [again] = await store.claim("w2", 1, 300, 3)
    assert again.id == intake.id and again.attempts == 1


async def test_get_unknown_message_is_not_found(store: SupabaseMessageStore) -> None:
    with pytest.raises(NotFound):
        await store.get("00000000-0000-4000-8000-000000000000")


async def test_deliveries_are_claimed_once_recorded_and_retried_when_due(
    store: SupabaseMessageStore, incoming: Make, db: asyncpg.Connection
) -> None:
    await store.intake(incoming(webhook_url="https://example.com/hook"))
    [claimed] = await store.claim("w1", 1, 30, 3)
    reply_id = (await store.complete(claimed.id, "w1", triage(), MessageState.ANSWERED)).reply_id

    [job] = await store.claim_deliveries("d1", 10, 30)
    assert (job.reply_id, job.attempt, job.webhook_url) == (reply_id, 1, "https://example.com/hook")
    assert job.classification is not None and job.content == "Здравствуйте! Чем могу помочь?"
    assert await store.claim_deliveries("d2", 10, 30) == []

    failed = DeliveryAttempt(outcome=DeliveryOutcome.RETRY, webhook_id=reply_id, url=job.webhook_url, status_code=500)
    await store.record_delivery(job, "d1", failed, datetime.now(UTC) - timedelta(seconds=1))
    [retry] = await store.claim_deliveries("d2", 10, 30)
    assert retry.reply_id == reply_id and retry.attempt == 2

    ok = DeliveryAttempt(outcome=DeliveryOutcome.DELIVERED, webhook_id=reply_id, url=job.webhook_url, status_code=200)
    await store.record_delivery(retry, "d2", ok, None)
    reply = await db.fetchrow("select * from replies where id = $1", reply_id)
    assert reply is not None
    assert (reply["delivery_state"], reply["delivery_attempts"], reply["last_status_code"]) == ("delivered", 2, 200)
    log = await db.fetch("select attempt, outcome, status_code, worker from delivery_attempts where reply_id = $1"
                         " order by attempt", reply_id)  # fmt: skip
    assert [tuple(r) for r in log] == [(1, "retry", 500, "d1"), (2, "delivered", 200, "d2")]


async def _leased_jobs(store: SupabaseMessageStore, incoming: Make, count: int) -> list[DeliveryJob]:
    jobs = []
    for n in range(count):
        await store.intake(incoming(f"message {n}", chat_id=f"chat-together-{n}", webhook_url="https://example.com/h"))
    for claimed in await store.claim("w1", count, 30, 3):
        done = await store.complete(claimed.id, "w1", triage(), MessageState.ANSWERED, lease_delivery=45)
        assert done.delivery is not None
        jobs.append(done.delivery)
    assert len(jobs) == count
    return jobs


def _calls(store: SupabaseMessageStore, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Each RPC the store makes from now on: its name and how many attempts it carries."""
    calls: list[tuple[str, int]] = []
    rpc = store._rpc

    async def counted(name: str, params: dict[str, Any]) -> Any:
        calls.append((name, len(params.get("p_items", [params]))))
        return await rpc(name, params)

    monkeypatch.setattr(store, "_rpc", counted)
    return calls


async def test_attempts_finishing_together_are_recorded_in_one_call_each_as_alone(
    store: SupabaseMessageStore, incoming: Make, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = await _leased_jobs(store, incoming, 4)
    calls = _calls(store, monkeypatch)
    retry_at = datetime.now(UTC) + timedelta(minutes=5)
    attempts = [
        DeliveryAttempt(outcome=DeliveryOutcome.DELIVERED, webhook_id=jobs[0].reply_id, url=None, status_code=200),
        DeliveryAttempt(outcome=DeliveryOutcome.RETRY, webhook_id=jobs[1].reply_id, url=None, status_code=503,
                        error="HTTP 503"),
        DeliveryAttempt(outcome=DeliveryOutcome.FAILED, webhook_id=jobs[2].reply_id, url=None, status_code=404),
        DeliveryAttempt(outcome=DeliveryOutcome.STOPPED, webhook_id=jobs[3].reply_id, url=None, status_code=410),
    ]  # fmt: skip

    due = [retry_at if attempt.outcome is DeliveryOutcome.RETRY else None for attempt in attempts]
    await asyncio.gather(
        *(store.record_delivery(job, "w1", attempt, at) for job, attempt, at in zip(jobs, attempts, due, strict=True))
    )

    assert calls == [("record_deliveries", 4)]
    rows = {str(r["id"]): r for r in await db.fetch("select * from replies where id = any($1::uuid[])",
                                                     [job.reply_id for job in jobs])}  # fmt: skip
    states = [(rows[j.reply_id]["delivery_state"], rows[j.reply_id]["last_status_code"]) for j in jobs]
    assert states == [("delivered", 200), ("retrying", 503), ("failed", 404), ("stopped", 410)]
    assert rows[jobs[1].reply_id]["next_attempt_at"] == retry_at
    assert all(rows[j.reply_id]["delivery_lease_owner"] is None for j in jobs)
    logged = await db.fetch(
        "select reply_id, attempt, outcome, worker from delivery_attempts where reply_id = any($1::uuid[])",
        [job.reply_id for job in jobs],
    )
    assert sorted((str(r["reply_id"]), r["attempt"], r["outcome"], r["worker"]) for r in logged) == sorted(
        (j.reply_id, 1, a.outcome.value, "w1") for j, a in zip(jobs, attempts, strict=True)
    )

    # Alone (nothing else on its way), an attempt goes at once, in a call of its own.
    [late] = await _leased_jobs(store, incoming, 1)
    ok = DeliveryAttempt(outcome=DeliveryOutcome.DELIVERED, webhook_id=late.reply_id, url=None, status_code=200)
    await store.record_delivery(late, "w1", ok, None)
    assert calls[-1] == ("record_delivery", 1)


async def test_a_batch_the_database_refuses_is_recorded_one_by_one_and_only_the_bad_attempt_fails(
    store: SupabaseMessageStore, incoming: Make, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = await _leased_jobs(store, incoming, 3)
    calls = _calls(store, monkeypatch)
    codes = [200, 10**12, 200]  # the second is no integer Postgres can store: the batch's transaction fails

    results = await asyncio.gather(
        *(store.record_delivery(job, "w1", DeliveryAttempt(outcome=DeliveryOutcome.DELIVERED, webhook_id=job.reply_id,
                                                           url=None, status_code=code), None)
          for job, code in zip(jobs, codes, strict=True)),
        return_exceptions=True,
    )  # fmt: skip

    assert calls == [("record_deliveries", 3), ("record_delivery", 1), ("record_delivery", 1), ("record_delivery", 1)]
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], StoreError) and not isinstance(results[1], StoreUnavailable)
    states = await db.fetch("select id, delivery_state from replies where id = any($1::uuid[])",
                            [job.reply_id for job in jobs])  # fmt: skip
    by_id = {str(r["id"]): r["delivery_state"] for r in states}
    assert [by_id[j.reply_id] for j in jobs] == ["delivered", "delivering", "delivered"]


async def test_completions_finishing_together_go_in_one_call_each_answered_as_alone(
    store: SupabaseMessageStore, incoming: Make, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(4):
        await store.intake(incoming(f"message {n}", chat_id=f"chat-complete-{n}", webhook_url="https://example.com/h"))
    claimed = await store.claim("w1", 3, 30, 3)
    [other] = await store.claim("w2", 1, 30, 3)
    calls = _calls(store, monkeypatch)

    answers = await asyncio.gather(
        *(store.complete(c.id, "w1", triage(f"answer {c.content}"), MessageState.ANSWERED, lease_delivery=45)
          for c in claimed),
        store.complete(other.id, "w1", triage(), MessageState.ANSWERED),  # w2's lease: refused, alone
        return_exceptions=True,
    )  # fmt: skip

    assert calls == [("complete_messages", 4)]
    *done, refused = answers
    assert isinstance(refused, LeaseLost)
    for message, completion in zip(claimed, done, strict=True):
        assert isinstance(completion, Completion) and completion.outcome is Outcome.SENT
        assert completion.message_ids == (message.id,)
        assert completion.delivery is not None and completion.delivery.message_id == message.id
        assert completion.delivery.content == f"answer {message.content}"
    states = await db.fetch("select id, state from messages where id = any($1::uuid[])",
                            [c.id for c in [*claimed, other]])  # fmt: skip
    by_id = {str(r["id"]): r["state"] for r in states}
    assert [by_id[c.id] for c in [*claimed, other]] == ["answered", "answered", "answered", "processing"]

    # A retried completion (its answer lost) gets the same answer back, in a call of its own.
    again = await store.complete(claimed[0].id, "w1", triage("other"), MessageState.ANSWERED, lease_delivery=45)
    assert again == done[0] and calls[-1] == ("complete_message", 1)


async def test_a_completion_asked_to_lease_its_delivery_hands_the_job_to_its_worker_and_to_nobody_else(
    store: SupabaseMessageStore, incoming: Make, db: asyncpg.Connection
) -> None:
    intake = await store.intake(incoming(webhook_url="https://example.com/hook"))
    [claimed] = await store.claim("w1", 1, 30, 3)

    done = await store.complete(claimed.id, "w1", triage(), MessageState.ANSWERED, lease_delivery=45)
    again = await store.complete(claimed.id, "w1", triage("other"), MessageState.ANSWERED, lease_delivery=45)

    job = done.delivery
    assert job is not None and job.reply_id == done.reply_id and job.message_id == intake.id
    assert (job.attempt, job.webhook_url, job.content) == (1, "https://example.com/hook", triage().reply)
    assert job.classification is not None and job.classification.category == "greeting"
    assert again.delivery == job  # a retried completion (its answer lost) gets the same attempt back
    assert await store.claim_deliveries("d2", 10, 30) == []  # leased in the completing transaction
    reply = await db.fetchrow(
        "select delivery_state, delivery_lease_owner, delivery_attempts,"
        " extract(epoch from next_attempt_at - now()) as lease from replies where id = $1",
        done.reply_id,
    )
    assert reply is not None
    assert (reply["delivery_state"], reply["delivery_lease_owner"], reply["delivery_attempts"]) == (
        "delivering",
        "w1",
        1,
    )
    assert 40 < reply["lease"] <= 45

    ok = DeliveryAttempt(outcome=DeliveryOutcome.DELIVERED, webhook_id=job.reply_id, url="https://example.com/hook",
                         status_code=200)  # fmt: skip
    await store.record_delivery(job, "w1", ok, None)
    assert await db.fetchval("select delivery_state from replies where id = $1", done.reply_id) == "delivered"


async def test_a_draft_is_not_leased_even_when_the_completion_asks(
    store: SupabaseMessageStore, incoming: Make, db: asyncpg.Connection
) -> None:
    intake = await store.intake(incoming())
    await db.execute(
        "update conversations set bot_mode = 'draft' where id = (select conversation_id from messages where id = $1)",
        intake.id,
    )
    [claimed] = await store.claim("w1", 1, 30, 3)
    done = await store.complete(claimed.id, "w1", triage(), MessageState.ANSWERED, lease_delivery=45)
    assert (done.outcome, done.delivery) == (Outcome.DRAFT, None)
    assert await db.fetchval("select delivery_state from replies where id = $1", done.reply_id) == "held"


async def test_a_claim_says_whether_more_was_claimable(store: SupabaseMessageStore, incoming: Make) -> None:
    await store.intake(incoming("one", chat_id="chat-more-1"))
    await store.intake(incoming("two", chat_id="chat-more-2"))

    [first] = await store.claim("w1", 1, 30, 3)
    [second] = await store.claim("w1", 1, 30, 3)

    assert (first.more, second.more) == (True, False)
    assert await store.claim("w1", 1, 30, 3) == []


async def test_the_look_beyond_the_limit_hides_nothing_from_a_claim_running_beside_it(
    store: SupabaseMessageStore, incoming: Make, stack: Stack
) -> None:
    first = await store.intake(incoming("one", chat_id="chat-beside-1"))
    second = await store.intake(incoming("two", chat_id="chat-beside-2"))
    holder = await asyncpg.connect(stack.database_url)
    try:
        async with holder.transaction():  # a claim still open (its locks held) when the other one runs
            [row] = await holder.fetch("select claim_messages('w1', 1, 30::float8, 3) as m")
            mine = json.loads(row["m"])
            # It saw the second message (more) without locking it: the claim beside it takes it at once.
            [beside] = await store.claim("w2", 1, 30, 3)
        assert (mine["id"], mine["more"]) == (first.id, True)
        assert (beside.id, beside.more) == (second.id, False)
    finally:
        await holder.close()
