"""Burst coalescing in SQL: a claim with p_burst_windows takes a conversation's unfinished customer
messages together once the newest is older than the platform's quiet window; the completion answers all
of them with one reply. Without the parameter the claim works one message at a time, as before."""

from __future__ import annotations

import asyncpg

from .conftest import Pipeline, rpc

QUIET = {"test": 0}  # the tests' platform is "test": no waiting
LONG_WINDOW = {"*": 60_000}


async def states(db: asyncpg.Connection, conversation: str) -> list[tuple[str, str | None]]:
    rows = await db.fetch(
        "select state, reply_id::text from public.messages where conversation_id = $1 and direction = 'inbound'"
        " order by created_at, id",
        conversation,
    )
    return [(row["state"], row["reply_id"]) for row in rows]


async def test_five_messages_are_claimed_together_and_answered_by_one_reply(
    pipeline: Pipeline, db: asyncpg.Connection
) -> None:
    sent = [await pipeline.intake(f"line {i}") for i in range(5)]
    conversation = sent[0][0]
    ids = [message for _, message in sent]
    assert await pipeline.claim(windows=LONG_WINDOW) == []  # the newest is younger than the window

    [claimed] = await pipeline.claim(windows=QUIET)
    assert claimed["id"] == ids[0]
    assert [m["id"] for m in claimed["burst"]] == ids
    assert [m["content"] for m in claimed["burst"]] == [f"line {i}" for i in range(5)]

    done = await pipeline.complete(ids[0])

    assert (done["outcome"], done["message_ids"]) == ("sent", ids)
    assert await states(db, conversation) == [("answered", done["reply_id"])] * 5
    [job] = await pipeline.leased()
    assert job["reply_id"] == done["reply_id"]
    for message in ids:  # a caller waiting on any of them gets the one reply
        view = await rpc(pipeline.service, "get_message", {"p_id": message})
        assert (view["state"], view["response"]) == ("answered", "Hi! How can I help?")

    # After the burst: a message of its own, its own answer.
    _, later = await pipeline.intake("one more")
    [alone] = await pipeline.claim(windows=QUIET)
    assert [m["id"] for m in alone["burst"]] == [later]
    assert (await pipeline.complete(later))["message_ids"] == [later]


async def test_the_window_is_per_platform_with_a_default(pipeline: Pipeline, db: asyncpg.Connection) -> None:
    conversation, first = await pipeline.intake("a")
    await pipeline.intake("b")
    assert await pipeline.claim(windows={"test": 60_000, "*": 0}) == []
    await db.execute("update public.messages set created_at = created_at - interval '2 minutes'"
                     " where conversation_id = $1", conversation)  # fmt: skip
    [claimed] = await pipeline.claim(windows={"test": 60_000, "*": 0})
    assert len(claimed["burst"]) == 2 and claimed["id"] == first


async def test_a_platform_the_windows_do_not_name_is_claimed_one_message_at_a_time(
    pipeline: Pipeline, db: asyncpg.Connection
) -> None:
    _, first = await pipeline.intake("a")
    _, second = await pipeline.intake("b")
    [claimed] = await pipeline.claim(windows={"telegram": 60_000})  # the tests' platform is "test"
    assert [m["id"] for m in claimed["burst"]] == [first]  # at once, and alone
    assert (await pipeline.complete(first))["message_ids"] == [first]
    [alone] = await pipeline.claim(windows={"telegram": 60_000})
    assert [m["id"] for m in alone["burst"]] == [second]


async def test_a_message_arriving_while_the_burst_is_answered_waits_for_its_own_turn(
    pipeline: Pipeline, db: asyncpg.Connection
) -> None:
    _, first = await pipeline.intake("a")
    _, second = await pipeline.intake("b")
    [claimed] = await pipeline.claim(windows=QUIET)
    _, during = await pipeline.intake("c")
    assert await pipeline.claim(windows=QUIET) == []  # the conversation is being answered
    done = await pipeline.complete(first)
    assert done["message_ids"] == [first, second]
    [next_burst] = await pipeline.claim(windows=QUIET)
    assert [m["id"] for m in next_burst["burst"]] == [during]
    assert len(claimed["burst"]) == 2


async def test_without_windows_the_claim_takes_one_message_as_before(
    pipeline: Pipeline, db: asyncpg.Connection
) -> None:
    conversation, first = await pipeline.intake("a")
    await pipeline.intake("b")
    [claimed] = await pipeline.claim()
    assert [m["id"] for m in claimed["burst"]] == [first]
    done = await pipeline.complete(first)
    assert done["message_ids"] == [first]
    assert [state for state, _ in await states(db, conversation)] == ["answered", "pending"]


async def test_lease_extension_release_expiry_and_finish_cover_the_whole_burst(
    pipeline: Pipeline, db: asyncpg.Connection
) -> None:
    conversation, first = await pipeline.intake("a")
    await pipeline.intake("b")
    await pipeline.claim("w1", windows=QUIET)
    extend = {"p_message_id": first, "p_worker": "w1", "p_lease_seconds": 120}
    assert await rpc(pipeline.service, "extend_lease", extend) is True
    leases = await db.fetch("select lease_expires_at > now() + interval '100 seconds' as long from public.messages"
                            " where conversation_id = $1", conversation)  # fmt: skip
    assert [row["long"] for row in leases] == [True, True]

    assert await rpc(pipeline.service, "release_message", {"p_message_id": first, "p_worker": "w1"}) is True
    assert [state for state, _ in await states(db, conversation)] == ["pending", "pending"]

    await pipeline.claim("w1", windows=QUIET)
    await db.execute("update public.messages set lease_expires_at = now() - interval '1 second'"
                     " where conversation_id = $1", conversation)  # fmt: skip
    [taken_over] = await pipeline.claim("w2", windows=QUIET)  # a dead worker's burst, whole
    assert len(taken_over["burst"]) == 2
    assert (await pipeline.complete(first, "w1"))["status"] == "lease_lost"

    params = {"p_message_id": first, "p_worker": "w2", "p_state": "handoff", "p_error": "unusable_answer: x"}
    assert (await rpc(pipeline.service, "finish_message", params))["status"] == "finished"
    assert [state for state, _ in await states(db, conversation)] == ["handoff", "handoff"]
    mode = await db.fetchval("select bot_mode from public.conversations where id = $1", conversation)
    assert mode == "off"  # a handoff waits for a person
