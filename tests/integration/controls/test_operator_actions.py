"""Each operator action through supabase-py with an operator's token: its effect on the rows, on what the
listener may claim and on what the delivery-lease RPC hands out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg

from neiromatrius.adapters.supabase_store import SupabaseMessageStore
from neiromatrius.core.models import ClaimedMessage

from .conftest import Pipeline, SignedIn, refused, rpc


async def conversation_row(db: asyncpg.Connection, conversation_id: str) -> asyncpg.Record:
    row = await db.fetchrow("select * from public.conversations where id = $1", conversation_id)
    assert row is not None
    return row


async def message_row(db: asyncpg.Connection, message_id: str) -> asyncpg.Record:
    row = await db.fetchrow("select * from public.messages where id = $1", message_id)
    assert row is not None
    return row


async def reply_row(db: asyncpg.Connection, reply_id: str) -> asyncpg.Record:
    row = await db.fetchrow("select * from public.replies where id = $1", reply_id)
    assert row is not None
    return row


def ids(jobs: list[dict[str, Any]]) -> list[str]:
    return [job["reply_id"] for job in jobs]


async def test_send_reply_is_leased_for_delivery_answers_waiting_messages_and_pauses_the_bot(
    pipeline: Pipeline, agent: SignedIn, db: asyncpg.Connection
) -> None:
    conversation, message = await pipeline.intake("Is anyone there?")
    before = await conversation_row(db, conversation)

    sent = await rpc(agent.client, "send_reply", {"p_conversation_id": conversation, "p_content": "  Yes, Anna here.  ",
                                                  "p_client_request_id": "req-1"})  # fmt: skip

    assert sent["created"] is True
    reply = await reply_row(db, sent["reply_id"])
    assert (reply["kind"], reply["status"], reply["content"], str(reply["author_id"]), reply["model"]) == (
        "operator", "sent", "Yes, Anna here.", agent.id, None,
    )  # fmt: skip
    assert (await message_row(db, message))["state"] == "answered"
    assert str((await message_row(db, message))["reply_id"]) == sent["reply_id"]
    outbound = await message_row(db, str(reply["outbound_message_id"]))
    assert (outbound["direction"], outbound["content"]) == ("outbound", "Yes, Anna here.")
    after = await conversation_row(db, conversation)
    assert after["control_version"] == before["control_version"] + 1
    assert after["bot_paused_at"] is not None and after["bot_paused_until"] is None  # until handed back (default)
    assert (after["unread_count"], after["last_message_direction"]) == (0, "outbound")
    assert sent["bot_paused_at"] is not None

    [job] = await pipeline.leased()
    assert (job["reply_id"], job["kind"], job["author_id"], job["content"], job["classification"]) == (
        sent["reply_id"], "operator", agent.id, "Yes, Anna here.", None,
    )  # fmt: skip

    # A retry with the same request id is the same reply; a different text under it is refused.
    again = await rpc(agent.client, "send_reply", {"p_conversation_id": conversation, "p_content": "Yes, Anna here.",
                                                   "p_client_request_id": "req-1"})  # fmt: skip
    assert (again["reply_id"], again["created"]) == (sent["reply_id"], False)
    conflict = await refused(agent.client, "send_reply", {"p_conversation_id": conversation, "p_content": "Other",
                                                          "p_client_request_id": "req-1"})  # fmt: skip
    assert conflict.code == "PT409"
    assert await db.fetchval("select count(*) from public.replies where conversation_id = $1", conversation) == 1

    # Paused: the customer's next message waits for a person.
    _, later = await pipeline.intake("Thanks!")
    assert await pipeline.claim() == []
    assert (await conversation_row(db, conversation))["unread_count"] == 1
    await rpc(agent.client, "hand_back", {"p_conversation_id": conversation})
    assert [row["id"] for row in await pipeline.claim()] == [later]


async def test_auto_pause_for_minutes_ends_by_itself_and_off_does_not_pause(
    pipeline: Pipeline, agent: SignedIn, db: asyncpg.Connection, settings_row: Any
) -> None:
    await settings_row(auto_pause="minutes", auto_pause_minutes=5)
    conversation, _ = await pipeline.intake("Hi")
    await rpc(agent.client, "send_reply", {"p_conversation_id": conversation, "p_content": "Hello"})
    row = await conversation_row(db, conversation)
    assert row["bot_paused_until"] - row["bot_paused_at"] == timedelta(minutes=5)
    _, waiting = await pipeline.intake("Still there?")
    assert await pipeline.claim() == []
    await db.execute("update public.conversations set bot_paused_until = now() - interval '1 second' where id = $1",
                     conversation)  # fmt: skip
    assert [r["id"] for r in await pipeline.claim()] == [waiting]

    await settings_row(auto_pause="off")
    other, _ = await pipeline.intake("Hi", chat="chat-2")
    before = await conversation_row(db, other)
    await rpc(agent.client, "send_reply", {"p_conversation_id": other, "p_content": "Hello"})
    after = await conversation_row(db, other)
    assert (after["bot_paused_at"], after["control_version"]) == (None, before["control_version"] + 1)
    _, next_message = await pipeline.intake("Question", chat="chat-2")
    assert [r["id"] for r in await pipeline.claim()] == [next_message]


async def test_a_draft_is_never_leased_and_an_approved_edit_is_delivered_once_with_the_original_kept(
    pipeline: Pipeline, agent: SignedIn, db: asyncpg.Connection, store: SupabaseMessageStore
) -> None:
    conversation, message = await pipeline.intake("What are your hours?")
    await rpc(agent.client, "set_bot_mode", {"p_conversation_id": conversation, "p_mode": "draft"})
    done = await pipeline.answer(message, reply="We open at 9.")
    assert done["outcome"] == "draft" and done["delivered_reply_id"] is None
    draft = done["reply_id"]
    assert await pipeline.leased() == []
    # get_message shows no response while the answer is a draft (MessageState learns 'draft' in phase 2).
    view = await rpc(pipeline.service, "get_message", {"p_id": message})
    assert (view["state"], view["response"]) == ("draft", None)
    assert await db.fetchval("select count(*) from public.messages where conversation_id = $1 and direction = "
                             "'outbound'", conversation) == 0  # fmt: skip

    edit = "We open at 9 am, Monday to Friday."
    approved = await rpc(agent.client, "approve_draft",
                         {"p_conversation_id": conversation, "p_reply_id": draft, "p_content": edit})  # fmt: skip
    assert (approved["created"], approved["edited"]) == (True, True)
    row = await reply_row(db, draft)
    assert (row["status"], row["content"], row["original_content"], str(row["approved_by"])) == (
        "approved", "We open at 9 am, Monday to Friday.", "We open at 9.", agent.id,
    )  # fmt: skip
    [job] = await pipeline.leased()
    assert (job["reply_id"], job["content"]) == (draft, "We open at 9 am, Monday to Friday.")
    assert (await message_row(db, message))["state"] == "answered"
    assert (await store.get(message)).response == "We open at 9 am, Monday to Friday."

    again = await rpc(agent.client, "approve_draft", {"p_conversation_id": conversation, "p_reply_id": draft,
                                                      "p_content": "We open at 9 am, Monday to Friday."})  # fmt: skip
    assert again["created"] is False
    assert await pipeline.leased() == []  # leased once, and only once
    outbound = await db.fetch("select content from public.messages where conversation_id = $1 and direction = "
                              "'outbound'", conversation)  # fmt: skip
    assert [r["content"] for r in outbound] == ["We open at 9 am, Monday to Friday."]


async def test_a_discarded_draft_is_never_delivered_and_its_message_waits_for_a_person(
    pipeline: Pipeline, agent: SignedIn, db: asyncpg.Connection
) -> None:
    conversation, message = await pipeline.intake("Refund please")
    await rpc(agent.client, "set_bot_mode", {"p_conversation_id": conversation, "p_mode": "draft"})
    draft = (await pipeline.answer(message))["reply_id"]

    first = await rpc(agent.client, "discard_draft", {"p_conversation_id": conversation, "p_reply_id": draft})
    second = await rpc(agent.client, "discard_draft", {"p_conversation_id": conversation, "p_reply_id": draft})

    assert (first["created"], second["created"]) == (True, False)
    row = await reply_row(db, draft)
    assert (row["status"], row["delivery_state"], row["discard_reason"], str(row["discarded_by"])) == (
        "discarded", "held", "operator", agent.id,
    )  # fmt: skip
    waiting = await message_row(db, message)
    assert (waiting["state"], waiting["reply_id"]) == ("handoff", None)
    assert await pipeline.leased() == []
    late = await refused(agent.client, "approve_draft", {"p_conversation_id": conversation, "p_reply_id": draft})
    assert (late.code, "not a draft" in late.message) == ("PT409", True)


async def test_an_operator_reply_supersedes_an_open_draft(
    pipeline: Pipeline, agent: SignedIn, db: asyncpg.Connection
) -> None:
    conversation, message = await pipeline.intake("Where is my order?")
    await rpc(agent.client, "set_bot_mode", {"p_conversation_id": conversation, "p_mode": "draft"})
    draft = (await pipeline.answer(message))["reply_id"]
    sent = await rpc(agent.client, "send_reply", {"p_conversation_id": conversation, "p_content": "On its way!"})
    assert ((await reply_row(db, draft))["status"], (await reply_row(db, draft))["discard_reason"]) == (
        "discarded", "superseded",
    )  # fmt: skip
    assert str((await message_row(db, message))["reply_id"]) == sent["reply_id"]
    assert ids(await pipeline.leased()) == [sent["reply_id"]]


async def test_take_over_stops_the_bot_and_hand_back_answers_what_is_unanswered_once(
    pipeline: Pipeline, agent: SignedIn, db: asyncpg.Connection
) -> None:
    conversation, _ = await pipeline.intake("Hi")
    taken = await rpc(agent.client, "take_over", {"p_conversation_id": conversation})
    assert (taken["changed"], taken["bot_mode"], taken["assignee_id"], taken["resume_mode"]) == (
        True, "off", agent.id, "auto",
    )  # fmt: skip
    again = await rpc(agent.client, "take_over", {"p_conversation_id": conversation})
    assert (again["changed"], again["control_version"]) == (False, taken["control_version"])
    _, second = await pipeline.intake("Hello??")
    assert await pipeline.claim() == []  # off: no model call

    back = await rpc(agent.client, "hand_back", {"p_conversation_id": conversation})
    assert (back["changed"], back["bot_mode"], back["resume_mode"]) == (True, "auto", None)
    assert (await rpc(agent.client, "hand_back", {"p_conversation_id": conversation}))["changed"] is False
    [claimed] = await pipeline.claim()
    done = await pipeline.complete(claimed["id"])
    assert done["outcome"] == "sent"
    [claimed_next] = await pipeline.claim()
    assert claimed_next["id"] == second
    await pipeline.complete(second)
    assert await pipeline.claim() == []
    states = await db.fetch("select state from public.messages where conversation_id = $1 and direction = 'inbound'",
                            conversation)  # fmt: skip
    assert [r["state"] for r in states] == ["answered", "answered"]
    assert len(await pipeline.leased()) == 2  # one reply each, once


async def test_resolve_reopen_and_assign(
    pipeline: Pipeline, agent: SignedIn, admin: SignedIn, stranger: Any, db: asyncpg.Connection
) -> None:
    conversation, _ = await pipeline.intake("Thanks, that's all")
    resolved = await rpc(agent.client, "resolve", {"p_conversation_id": conversation})
    assert (resolved["changed"], resolved["status"]) == (True, "resolved")
    assert (await rpc(agent.client, "resolve", {"p_conversation_id": conversation}))["changed"] is False
    assert (await conversation_row(db, conversation))["resolved_at"] is not None
    await pipeline.intake("Actually, one more thing")  # a customer message reopens it
    assert (await conversation_row(db, conversation))["status"] == "open"
    await rpc(agent.client, "resolve", {"p_conversation_id": conversation})
    reopened = await rpc(agent.client, "reopen", {"p_conversation_id": conversation})
    assert (reopened["changed"], reopened["status"]) == (True, "open")

    assigned = await rpc(agent.client, "assign", {"p_conversation_id": conversation, "p_assignee_id": admin.id})
    assert (assigned["changed"], assigned["assignee_id"]) == (True, admin.id)
    unassigned = await rpc(agent.client, "assign", {"p_conversation_id": conversation, "p_assignee_id": None})
    assert (unassigned["changed"], unassigned["assignee_id"]) == (True, None)


async def test_a_note_is_stored_for_operators_and_never_delivered_nor_in_the_models_context(
    pipeline: Pipeline, agent: SignedIn, db: asyncpg.Connection, store: SupabaseMessageStore
) -> None:
    conversation, message = await pipeline.intake("My order is late")
    note = await rpc(agent.client, "add_note", {"p_conversation_id": conversation, "p_body": "VIP, be kind",
                                                "p_client_request_id": "n-1"})  # fmt: skip
    retried = await rpc(agent.client, "add_note", {"p_conversation_id": conversation, "p_body": "VIP, be kind",
                                                   "p_client_request_id": "n-1"})  # fmt: skip
    assert (note["created"], retried["created"], retried["note_id"]) == (True, False, note["note_id"])
    seen = await agent.client.table("notes").select("body,author_id").eq("conversation_id", conversation).execute()
    assert seen.data == [{"body": "VIP, be kind", "author_id": agent.id}]

    [claimed] = await pipeline.claim()
    context = await store.context(ClaimedMessage.model_validate(claimed), 20)
    assert all("VIP" not in item.content for item in context)
    assert await db.fetchval("select count(*) from public.messages where content like '%VIP%' and conversation_id = $1",
                             conversation) == 0  # fmt: skip
    await pipeline.complete(message)
    assert all("VIP" not in job["content"] for job in await pipeline.leased())


async def test_a_reply_that_failed_for_good_is_resent_with_attempts_reset(
    pipeline: Pipeline, agent: SignedIn, db: asyncpg.Connection
) -> None:
    _, message = await pipeline.intake("Hi")
    reply = (await pipeline.answer(message))["reply_id"]
    not_failed = await refused(agent.client, "resend_reply", {"p_reply_id": reply})
    assert not_failed.code == "PT409"
    [job] = await pipeline.leased("d1")
    await rpc(pipeline.service, "record_delivery", {
        "p_reply_id": reply, "p_worker": "d1", "p_outcome": "failed", "p_webhook_id": reply, "p_status_code": 500,
        "p_error": "gave up", "p_duration_ms": 3, "p_next_attempt_at": None,
    })  # fmt: skip
    assert job["attempt"] == 1

    resent = await rpc(agent.client, "resend_reply", {"p_reply_id": reply})
    again = await rpc(agent.client, "resend_reply", {"p_reply_id": reply})

    assert (resent["created"], again["created"]) == (True, False)
    row = await reply_row(db, reply)
    assert (row["delivery_state"], row["delivery_attempts"], str(row["resent_by"]), row["resend_count"]) == (
        "pending", 0, agent.id, 1,
    )  # fmt: skip
    [job] = await pipeline.leased("d2")
    assert (job["reply_id"], job["attempt"]) == (reply, 1)
    await rpc(pipeline.service, "record_delivery", {
        "p_reply_id": reply, "p_worker": "d2", "p_outcome": "delivered", "p_webhook_id": reply, "p_status_code": 200,
        "p_error": None, "p_duration_ms": 3, "p_next_attempt_at": None,
    })  # fmt: skip
    delivered = await refused(agent.client, "resend_reply", {"p_reply_id": reply})
    assert (delivered.code, "delivered" in delivered.message) == ("PT409", True)


async def test_a_handoff_leaves_the_bot_off_sends_the_notice_of_the_language_and_keeps_the_answer_as_a_draft(
    pipeline: Pipeline, agent: SignedIn, db: asyncpg.Connection, settings_row: Any
) -> None:
    conversation, message = await pipeline.intake("Я хочу вернуть деньги")
    done = await pipeline.answer(message, reply="Коллега ответит.", language="ru", needs_human=True, state="handoff")
    assert done["outcome"] == "handoff"
    notice = await reply_row(db, done["delivered_reply_id"])
    assert (notice["kind"], notice["content"]) == (
        "handoff_notice", "Спасибо! Коллега посмотрит ваше сообщение и скоро ответит вам здесь.",
    )  # fmt: skip
    said = await message_row(db, str(notice["outbound_message_id"]))  # the notice is in the history
    assert (said["direction"], said["content"], str(said["reply_to"])) == ("outbound", notice["content"], message)
    bot = await reply_row(db, done["reply_id"])
    assert (bot["status"], bot["delivery_state"], bot["outcome"]) == ("draft", "held", "handoff")
    assert bot["outbound_message_id"] is None and bot["next_attempt_at"] is None  # a draft is not in it yet
    assert ids(await pipeline.leased()) == [done["delivered_reply_id"]]
    row = await conversation_row(db, conversation)
    assert (row["bot_mode"], row["resume_mode"], row["handed_off_at"] is not None) == ("off", "auto", True)
    assert (await message_row(db, message))["state"] == "handoff"
    _, later = await pipeline.intake("Алло?")
    assert await pipeline.claim() == []  # waits for a person until handed back
    await rpc(agent.client, "hand_back", {"p_conversation_id": conversation})
    assert [r["id"] for r in await pipeline.claim()] == [later]

    # No notice in the customer's language: the model's own reply goes; notices off: nothing goes.
    other, first = await pipeline.intake("Ich will mein Geld zurück", chat="chat-de")
    done = await pipeline.answer(first, reply="Ein Kollege meldet sich.", language="de", needs_human=True)
    assert (done["outcome"], done["delivered_reply_id"]) == ("handoff", done["reply_id"])
    await settings_row(handoff_message_enabled=False)
    third, quiet = await pipeline.intake("Refund!", chat="chat-quiet")
    await pipeline.leased()
    done = await pipeline.answer(quiet, needs_human=True)
    assert (done["outcome"], done["delivered_reply_id"]) == ("handoff", None)
    assert await pipeline.leased() == []
    assert other != third


async def test_the_inbox_fields_follow_the_messages(pipeline: Pipeline, db: asyncpg.Connection) -> None:
    conversation, message = await pipeline.intake("First " + "x" * 200)
    await pipeline.intake("Second")
    row = await conversation_row(db, conversation)
    assert (row["unread_count"], row["last_message_preview"], row["last_message_direction"]) == (2, "Second", "inbound")
    await pipeline.answer(message, reply="An answer")
    row = await conversation_row(db, conversation)
    assert (row["unread_count"], row["last_message_preview"], row["last_message_direction"]) == (
        0, "An answer", "outbound",
    )  # fmt: skip
    assert row["bot_mode"] == "auto" and row["status"] == "open"


async def test_queue_stats_count_messages_waiting_for_people_apart(pipeline: Pipeline, agent: SignedIn) -> None:
    conversation, _ = await pipeline.intake("Hi")
    await pipeline.intake("Other", chat="chat-2")
    await rpc(agent.client, "take_over", {"p_conversation_id": conversation})
    stats = await rpc(pipeline.service, "queue_stats", {})
    assert (stats["pending"], stats["processing"], stats["waiting_for_people"]) == (1, 0, 1)
