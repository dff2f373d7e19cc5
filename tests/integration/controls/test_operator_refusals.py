"""Bad input and the wrong caller, for every operator RPC: a clear error (SQLSTATE and HTTP status as
PostgREST answers them), and nothing changed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from postgrest import APIError
from supabase import AsyncClient

from tests.conftest import Stack
from tests.support.operators import Operators

from .conftest import Pipeline, SignedIn, SignIn, new_uuid, refused, rpc

LONG = "x" * 4001
UNKNOWN = "00000000-0000-4000-8000-00000000dead"
EMPTY = "p_content must not be empty"


@dataclass(frozen=True)
class World:
    conversation: str  # has a draft and a sent (not failed) reply
    draft: str
    sent: str
    other: str  # another conversation, with its own draft
    other_draft: str


@pytest.fixture
async def world(pipeline: Pipeline, agent: SignedIn) -> World:
    conversation, first = await pipeline.intake("Hello")
    sent = (await pipeline.answer(first))["reply_id"]
    await rpc(agent.client, "set_bot_mode", {"p_conversation_id": conversation, "p_mode": "draft"})
    _, second = await pipeline.intake("And the price?")
    draft = (await pipeline.answer(second))["reply_id"]
    other, third = await pipeline.intake("Hi", chat="chat-other")
    await rpc(agent.client, "set_bot_mode", {"p_conversation_id": other, "p_mode": "draft"})
    other_draft = (await pipeline.answer(third))["reply_id"]
    return World(conversation, draft, sent, other, other_draft)


async def snapshot(db: asyncpg.Connection, *conversations: str) -> list[Any]:
    """Every row the controls touch, for these conversations, as text."""
    rows = []
    for table, column in (("conversations", "id"), ("messages", "conversation_id"), ("replies", "conversation_id"),
                          ("notes", "conversation_id")):  # fmt: skip
        rows.append(await db.fetch(
            f"select t::text from public.{table} t where t.{column} = any($1::uuid[]) order by t::text",
            list(conversations),
        ))  # fmt: skip
    return [[r[0] for r in table] for table in rows]


Case = tuple[str, Callable[[World], dict[str, Any]], str, str]
BAD_INPUT: list[Case] = [
    ("send_reply", lambda w: {"p_conversation_id": UNKNOWN, "p_content": "Hi"}, "PT404", "not found"),
    ("send_reply", lambda w: {"p_conversation_id": w.conversation, "p_content": "  \n "}, "22023", EMPTY),
    ("send_reply", lambda w: {"p_conversation_id": w.conversation, "p_content": None}, "22023", EMPTY),
    ("send_reply", lambda w: {"p_conversation_id": w.conversation, "p_content": LONG}, "22023", "the limit is 4000"),
    ("send_reply", lambda w: {"p_conversation_id": w.conversation, "p_content": "Hi", "p_client_request_id": "r" * 129},
     "22023", "p_client_request_id"),
    ("approve_draft", lambda w: {"p_conversation_id": w.conversation, "p_reply_id": UNKNOWN}, "PT404", "not found"),
    ("approve_draft", lambda w: {"p_conversation_id": UNKNOWN, "p_reply_id": w.draft}, "PT404", "not found"),
    ("approve_draft", lambda w: {"p_conversation_id": w.conversation, "p_reply_id": w.other_draft}, "22023",
     "belongs to another conversation"),
    ("approve_draft", lambda w: {"p_conversation_id": w.conversation, "p_reply_id": w.sent}, "PT409", "is not a draft"),
    ("approve_draft", lambda w: {"p_conversation_id": w.conversation, "p_reply_id": w.draft, "p_content": " "}, "22023",
     "p_content must not be empty"),
    ("approve_draft", lambda w: {"p_conversation_id": w.conversation, "p_reply_id": w.draft, "p_content": LONG},
     "22023", "the limit is 4000"),
    ("discard_draft", lambda w: {"p_conversation_id": w.conversation, "p_reply_id": UNKNOWN}, "PT404", "not found"),
    ("discard_draft", lambda w: {"p_conversation_id": w.conversation, "p_reply_id": w.other_draft}, "22023",
     "belongs to another conversation"),
    ("discard_draft", lambda w: {"p_conversation_id": w.conversation, "p_reply_id": w.sent}, "PT409", "is not a draft"),
    ("resend_reply", lambda w: {"p_reply_id": UNKNOWN}, "PT404", "not found"),
    ("resend_reply", lambda w: {"p_reply_id": w.sent}, "PT409", "has not failed"),
    ("resend_reply", lambda w: {"p_reply_id": w.draft}, "PT409", "has not failed (its delivery is held)"),
    ("add_note", lambda w: {"p_conversation_id": UNKNOWN, "p_body": "note"}, "PT404", "not found"),
    ("add_note", lambda w: {"p_conversation_id": w.conversation, "p_body": ""}, "22023", "p_body must not be empty"),
    ("add_note", lambda w: {"p_conversation_id": w.conversation, "p_body": LONG}, "22023", "the limit is 4000"),
    ("take_over", lambda w: {"p_conversation_id": UNKNOWN}, "PT404", "not found"),
    ("hand_back", lambda w: {"p_conversation_id": UNKNOWN}, "PT404", "not found"),
    ("hand_back", lambda w: {"p_conversation_id": w.conversation, "p_mode": "off"}, "22023", "auto or draft"),
    ("set_bot_mode", lambda w: {"p_conversation_id": w.conversation, "p_mode": "sometimes"}, "22023", "p_mode must be"),
    ("set_bot_mode", lambda w: {"p_conversation_id": UNKNOWN, "p_mode": "off"}, "PT404", "not found"),
    ("assign", lambda w: {"p_conversation_id": UNKNOWN, "p_assignee_id": None}, "PT404", "not found"),
    ("assign", lambda w: {"p_conversation_id": w.conversation, "p_assignee_id": UNKNOWN}, "22023",
     "is not an active operator"),
    ("resolve", lambda w: {"p_conversation_id": UNKNOWN}, "PT404", "not found"),
    ("reopen", lambda w: {"p_conversation_id": UNKNOWN}, "PT404", "not found"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "params", "code", "words"), BAD_INPUT, ids=[f"{c[0]}-{c[2]}-{i}" for i, c in
                                                                               enumerate(BAD_INPUT)])  # fmt: skip
async def test_bad_input_gets_a_clear_error_and_changes_nothing(
    world: World, agent: SignedIn, db: asyncpg.Connection, name: str, params: Callable[[World], dict[str, Any]],
    code: str, words: str,
) -> None:  # fmt: skip
    before = await snapshot(db, world.conversation, world.other)
    error = await refused(agent.client, name, params(world))
    assert error.code == code
    assert error.message.startswith(f"{name}:") and words in error.message, error.message
    assert await snapshot(db, world.conversation, world.other) == before


def valid_calls(w: World, operator: str) -> dict[str, dict[str, Any]]:
    c = w.conversation
    return {
        "send_reply": {"p_conversation_id": c, "p_content": "Hi"},
        "approve_draft": {"p_conversation_id": c, "p_reply_id": w.draft},
        "discard_draft": {"p_conversation_id": c, "p_reply_id": w.draft},
        "resend_reply": {"p_reply_id": w.sent},
        "add_note": {"p_conversation_id": c, "p_body": "note"},
        "take_over": {"p_conversation_id": c},
        "hand_back": {"p_conversation_id": c},
        "set_bot_mode": {"p_conversation_id": c, "p_mode": "off"},
        "assign": {"p_conversation_id": c, "p_assignee_id": operator},
        "resolve": {"p_conversation_id": c},
        "reopen": {"p_conversation_id": c},
    }


async def test_a_non_operator_an_inactive_operator_and_anon_can_do_nothing(
    world: World, agent: SignedIn, stranger: AsyncClient, anon: AsyncClient, operators: Operators, sign_in: SignIn,
    db: asyncpg.Connection,
) -> None:  # fmt: skip
    retired = await operators.make("admin", active=False)
    inactive = await sign_in(retired.user_id)
    before = await snapshot(db, world.conversation, world.other)
    for name, params in valid_calls(world, agent.id).items():
        for who, client in (("stranger", stranger), ("inactive", inactive)):
            error = await refused(client, name, params)
            assert (error.code, error.message) == ("42501", f"{name}: only an active operator may do this"), who
        error = await refused(anon, name, params)
        assert error.code == "42501", name  # execute is not granted to anon at all
    assert await snapshot(db, world.conversation, world.other) == before
    # Nor do they read what operators read.
    for client in (stranger, inactive):
        for table in ("conversations", "replies", "notes", "categories", "bot_settings", "analytics_messages_daily"):
            assert (await client.table(table).select("*").limit(5).execute()).data == [], table


async def test_errors_reach_http_as_clean_4xx_json(world: World, agent: SignedIn, stack: Stack) -> None:
    def call(name: str, params: dict[str, Any], token: str | None) -> httpx.Response:
        headers = {"apikey": stack.anon_key, **({"Authorization": f"Bearer {token}"} if token else {})}
        return httpx.post(f"{stack.url}/rest/v1/rpc/{name}", json=params, headers=headers, timeout=10)

    token = stack.user_token(sub=agent.id)
    cases = [
        ("take_over", {"p_conversation_id": UNKNOWN}, token, 404),
        ("send_reply", {"p_conversation_id": world.conversation, "p_content": ""}, token, 400),
        ("discard_draft", {"p_conversation_id": world.conversation, "p_reply_id": world.sent}, token, 409),
        ("take_over", {"p_conversation_id": world.conversation}, stack.user_token(sub=new_uuid()), 403),
        ("take_over", {"p_conversation_id": world.conversation}, None, 401),
    ]
    for name, params, who, status in cases:
        response = call(name, params, who)
        assert response.status_code == status, (name, response.text)
        body = response.json()
        assert set(body) == {"code", "message", "details", "hint"} and body["message"], body


async def test_direct_table_writes_cannot_forge_bot_replies_or_lease_a_draft(
    world: World, agent: SignedIn, db: asyncpg.Connection
) -> None:
    table = agent.client.table
    forged = {"message_id": world.draft, "conversation_id": world.conversation, "content": "x", "kind": "bot",
              "status": "sent", "delivery_state": "pending"}  # fmt: skip
    with pytest.raises(APIError) as bot_reply:
        await table("replies").insert(forged).execute()
    assert bot_reply.value.code == "42501"
    # A draft approved "by hand" must be signed by the caller; a delivered reply is not the operator's to edit.
    with pytest.raises(APIError) as unsigned:
        await table("replies").update({"status": "approved", "delivery_state": "pending"}).eq("id", world.draft)\
            .execute()  # fmt: skip
    assert unsigned.value.code == "42501"
    touched = await table("replies").update({"content": "changed"}).eq("id", world.sent).execute()
    assert touched.data == []
    with pytest.raises(APIError) as version:
        await table("conversations").update({"delivery_state": "x"}).eq("id", world.conversation).execute()
    assert version.value.code in ("42703", "PGRST204")  # no such column to write
    # control_version only moves forward, by one, whatever is written into it.
    before = await db.fetchval("select control_version from public.conversations where id = $1", world.conversation)
    await table("conversations").update({"control_version": 0}).eq("id", world.conversation).execute()
    after = await db.fetchval("select control_version from public.conversations where id = $1", world.conversation)
    assert after == before + 1
    # Even the service role cannot make a draft leasable: a constraint ties drafts to 'held'.
    with pytest.raises(asyncpg.CheckViolationError, match="replies_drafts_are_held"):
        await db.execute("update public.replies set delivery_state = 'pending' where id = $1", world.draft)
