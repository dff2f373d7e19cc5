"""The fence: an operator's takeover or reply that commits while the model is answering wins. The bot's
answer is stored as a discarded draft (visible, never leased for delivery), decided by complete_message in
its own transaction with the conversation row locked, not by a check before it."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

import asyncpg

from .conftest import Pipeline, SignedIn, rpc

TRIALS = 200


async def bot_replies(db: asyncpg.Connection, conversation: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "select id, status, delivery_state, discard_reason, control_version from public.replies"
        " where conversation_id = $1 and kind = 'bot' order by created_at",
        conversation,
    )


async def test_a_takeover_between_claim_and_complete_turns_the_answer_into_a_discarded_draft(
    pipeline: Pipeline, agent: SignedIn, db: asyncpg.Connection
) -> None:
    conversation, message = await pipeline.intake("Hello")
    [claimed] = await pipeline.claim()
    await rpc(agent.client, "take_over", {"p_conversation_id": conversation})

    done = await pipeline.complete(claimed["id"])

    assert (done["status"], done["outcome"], done["delivered_reply_id"]) == ("completed", "discarded", None)
    [reply] = await bot_replies(db, conversation)
    assert (reply["status"], reply["delivery_state"], reply["discard_reason"]) == ("discarded", "held", "takeover")
    assert await pipeline.leased() == []
    state = await db.fetchval("select state from public.messages where id = $1", message)
    assert state == "pending"  # unanswered: it waits for the operator who took over
    assert await pipeline.claim() == []
    # A retry of the same completion is told what happened, and writes nothing more.
    assert (await pipeline.complete(claimed["id"]))["status"] == "already_done"
    assert len(await bot_replies(db, conversation)) == 1


async def test_an_operator_reply_between_claim_and_complete_answers_the_message_and_the_bot_stays_quiet(
    pipeline: Pipeline, agent: SignedIn, db: asyncpg.Connection, settings_row: Callable[..., Awaitable[None]]
) -> None:
    await settings_row(auto_pause="off")  # no pause: the version alone fences
    conversation, message = await pipeline.intake("Hello")
    [claimed] = await pipeline.claim()
    sent = await rpc(agent.client, "send_reply", {"p_conversation_id": conversation, "p_content": "I'm here"})

    done = await pipeline.complete(claimed["id"])

    assert done["outcome"] == "discarded"
    row = await db.fetchrow("select state, reply_id from public.messages where id = $1", message)
    assert row is not None and (row["state"], str(row["reply_id"])) == ("answered", sent["reply_id"])
    assert [job["reply_id"] for job in await pipeline.leased()] == [sent["reply_id"]]


async def test_take_over_and_hand_back_during_the_model_call_still_fence_and_the_message_is_answered_once(
    pipeline: Pipeline, agent: SignedIn, db: asyncpg.Connection
) -> None:
    conversation, message = await pipeline.intake("Hello")
    [claimed] = await pipeline.claim()
    await rpc(agent.client, "take_over", {"p_conversation_id": conversation})
    await rpc(agent.client, "hand_back", {"p_conversation_id": conversation})
    assert (await pipeline.complete(claimed["id"]))["outcome"] == "discarded"

    [again] = await pipeline.claim()
    assert again["id"] == message
    assert (await pipeline.complete(message))["outcome"] == "sent"
    assert await pipeline.claim() == []
    assert [r["status"] for r in await bot_replies(db, conversation)] == ["discarded", "sent"]
    assert len(await pipeline.leased()) == 1


async def test_a_mode_change_during_the_model_call_fences_too(
    pipeline: Pipeline, agent: SignedIn, db: asyncpg.Connection
) -> None:
    conversation, _ = await pipeline.intake("Hello")
    [claimed] = await pipeline.claim()
    await rpc(agent.client, "set_bot_mode", {"p_conversation_id": conversation, "p_mode": "draft"})
    assert (await pipeline.complete(claimed["id"]))["outcome"] == "discarded"
    assert await pipeline.leased() == []


async def test_takeover_racing_the_answer_never_lets_a_bot_reply_out_after_it(
    pipeline: Pipeline, agent: SignedIn, db: asyncpg.Connection
) -> None:
    """Two connections race for the conversation row: the completion (service role, as the listener) and
    the takeover (the operator's token). Whichever order they commit in, a bot reply that is to be delivered
    was written before the takeover (its control_version is older), and one written after is discarded."""
    outcomes: Counter[str] = Counter()
    to_deliver: set[str] = set()
    raced: set[str] = set()
    for trial in range(TRIALS):
        conversation, message = await pipeline.intake(f"Trial {trial}", chat=f"race-{trial}")
        raced.add(conversation)
        [claimed] = await pipeline.claim()
        assert claimed["id"] == message
        done, taken = await asyncio.gather(
            pipeline.complete(message),
            rpc(agent.client, "take_over", {"p_conversation_id": conversation}),
        )
        [reply] = await bot_replies(db, conversation)
        outcomes[done["outcome"]] += 1
        if done["outcome"] == "sent":
            assert reply["control_version"] < taken["control_version"], trial  # committed before the takeover
            to_deliver.add(str(reply["id"]))
        else:
            assert done["outcome"] == "discarded", done
            assert (reply["status"], reply["delivery_state"]) == ("discarded", "held")
            assert reply["control_version"] == taken["control_version"]  # it saw the takeover
    leased = {job["reply_id"] for job in await pipeline.leased() if job["conversation_id"] in raced}
    assert leased == to_deliver  # nothing discarded is ever leased
    assert sum(outcomes.values()) == TRIALS
    print(f"race outcomes over {TRIALS} trials: {dict(outcomes)}")


async def test_an_operator_reply_racing_the_answer_is_never_followed_by_the_bots(
    pipeline: Pipeline, agent: SignedIn, db: asyncpg.Connection, settings_row: Callable[..., Awaitable[None]]
) -> None:
    """The same race with send_reply and no auto-pause: the version alone fences. A delivered bot reply was
    written before the operator's; otherwise the bot's answer is discarded and the operator's answers."""
    await settings_row(auto_pause="off")
    outcomes: Counter[str] = Counter()
    for trial in range(TRIALS // 2):
        conversation, message = await pipeline.intake(f"Trial {trial}", chat=f"reply-race-{trial}")
        [claimed] = await pipeline.claim()
        assert claimed["id"] == message
        done, sent = await asyncio.gather(
            pipeline.complete(message),
            rpc(agent.client, "send_reply", {"p_conversation_id": conversation, "p_content": "Operator here"}),
        )
        outcomes[done["outcome"]] += 1
        [bot] = await bot_replies(db, conversation)
        operator_version = await db.fetchval("select control_version from public.replies where id = $1",
                                             sent["reply_id"])  # fmt: skip
        answered_by = await db.fetchval("select reply_id::text from public.messages where id = $1", message)
        if done["outcome"] == "sent":
            assert bot["control_version"] < operator_version
            assert answered_by == str(bot["id"])
        else:
            assert done["outcome"] == "discarded" and bot["status"] == "discarded"
            assert answered_by == sent["reply_id"]
    assert sum(outcomes.values()) == TRIALS // 2
    print(f"reply race outcomes over {TRIALS // 2} trials: {dict(outcomes)}")


async def test_a_message_claimed_before_the_controls_existed_is_answered_as_before(
    pipeline: Pipeline, db: asyncpg.Connection
) -> None:
    _, message = await pipeline.intake("Hello")
    [claimed] = await pipeline.claim()
    await db.execute("update public.messages set claim_version = null, claimed_at = null where id = $1", message)
    assert (await pipeline.complete(claimed["id"]))["outcome"] == "sent"
