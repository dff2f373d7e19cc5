"""The listener under the conversation controls, end to end: a listener in this process (OpenAI mocked with
respx through its own httpx client) against the local stack, operators acting through supabase-py with
their own tokens, replies delivered to a loopback receiver.

"No model call" and "nothing delivered" are shown without waiting a while: a later message of another
conversation is answered (or delivered) first, and claims and deliveries take the oldest work first, so
the listener had its chance at the earlier one and left it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import asyncpg
import pytest
import respx
from pydantic import SecretStr
from standardwebhooks import Webhook

from neiromatrius import composition
from neiromatrius.adapters.supabase_store import SupabaseMessageStore
from neiromatrius.adapters.webhooks import webhook_secret
from neiromatrius.config import Settings
from neiromatrius.core.models import ClaimedMessage, IncomingMessage, MessageState
from neiromatrius.core.ports import WorkQueue
from tests.conftest import MakeReceiver
from tests.e2e.conftest import running_listener
from tests.support import openai_mock
from tests.support.http_receiver import Receiver
from tests.support.waiting import eventually

from .conftest import SignedIn, rpc

pytestmark = pytest.mark.usefixtures("worker_queue_clear")  # the listener claims whatever is pending

BOUND = 15.0
BURST_WINDOW_MS = 3000  # wider than the gaps between the test's five intakes, even on a loaded machine


@pytest.fixture
def listener_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"openai_base_url": openai_mock.BASE_URL, "openai_api_key": SecretStr("sk-test")})


@pytest.fixture
def openai() -> Any:
    with openai_mock.mocked_openai() as route:
        route.mock(return_value=openai_mock.answered(category="greeting", language="en", reply="Hello from the bot"))
        yield route


@pytest.fixture
async def hook(receiver: MakeReceiver) -> Receiver:
    return await receiver()


@pytest.fixture
def say(store: SupabaseMessageStore, incoming: Callable[..., IncomingMessage], hook: Receiver) -> Callable[..., Any]:
    async def send(content: str, chat: str = "chat-1") -> tuple[str, str]:
        stored = await store.intake(incoming(content, chat_id=chat, webhook_url=hook.url()))
        return stored.conversation_id, stored.id

    return send


def requests(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


def user_lines(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "user"]


async def state_of(db: asyncpg.Connection, message_id: str) -> str:
    state: str = await db.fetchval("select state from public.messages where id = $1", uuid.UUID(message_id))
    return state


async def reaches(db: asyncpg.Connection, message_id: str, state: str) -> None:
    async def check() -> bool:
        return await state_of(db, message_id) == state

    await eventually(check, BOUND)


async def test_five_quick_messages_get_one_model_call_that_holds_them_all_and_one_reply(
    listener_settings: Settings, openai: respx.Route, say: Any, hook: Receiver, db: asyncpg.Connection,
    store: SupabaseMessageStore,
) -> None:  # fmt: skip
    settings = listener_settings.model_copy(update={"burst_window_ms": {"*": BURST_WINDOW_MS}})
    lines = ["hi", "I ordered a lamp", "order 1234", "it has not arrived", "can you check?"]
    async with running_listener(settings):
        ids = [(await say(line))[1] for line in lines]
        for message_id in ids:
            await reaches(db, message_id, "answered")
        [delivery] = await hook.wait_for_requests(1, BOUND)

        [request] = requests(openai)
        assert user_lines(request)[-5:] == lines  # every line as the customer sent it, in order
        replies = await db.fetch(
            "select distinct reply_id from public.messages where id = any($1::uuid[])", [uuid.UUID(i) for i in ids]
        )
        assert len(replies) == 1 and replies[0]["reply_id"] is not None
        for message_id in ids:  # a caller waiting on any of them gets the one reply
            view = await store.get(message_id)
            assert (view.state, view.response) == (MessageState.ANSWERED, "Hello from the bot")
        assert json.loads(delivery.body)["data"]["response"] == "Hello from the bot"

        # After the burst was answered: a message of its own, its own call and its own reply.
        _, later = await say("one more thing")
        await reaches(db, later, "answered")
        await hook.wait_for_requests(2, BOUND)

    assert openai.call_count == 2
    assert user_lines(requests(openai)[1])[-1] == "one more thing"
    assert "one more thing" not in user_lines(requests(openai)[1])[:-1]
    assert len(hook.requests) == 2


async def test_a_conversation_with_the_bot_off_gets_no_model_call(
    listener_settings: Settings, openai: respx.Route, say: Any, agent: SignedIn, db: asyncpg.Connection
) -> None:
    async with running_listener(listener_settings):
        conversation, first = await say("hello", chat="quiet")
        await reaches(db, first, "answered")
        await rpc(agent.client, "set_bot_mode", {"p_conversation_id": conversation, "p_mode": "off"})

        _, waiting = await say("are you there?", chat="quiet")
        _, sentinel = await say("hello", chat="busy")  # later, in a conversation whose bot is on
        await reaches(db, sentinel, "answered")

        assert await state_of(db, waiting) == "pending"  # it waits for a person
    assert openai.call_count == 2
    assert all("are you there?" not in user_lines(request) for request in requests(openai))


async def test_a_draft_is_not_delivered_until_approved_and_then_the_edited_text_once_signed(
    listener_settings: Settings, openai: respx.Route, say: Any, agent: SignedIn, hook: Receiver,
    db: asyncpg.Connection,
) -> None:  # fmt: skip
    async with running_listener(listener_settings):
        conversation, first = await say("hello", chat="drafted")
        await reaches(db, first, "answered")
        await hook.wait_for_requests(1, BOUND)
        await rpc(agent.client, "set_bot_mode", {"p_conversation_id": conversation, "p_mode": "draft"})

        _, asked = await say("what are your opening hours?", chat="drafted")
        await reaches(db, asked, "draft")
        _, sentinel = await say("hello", chat="other")
        await reaches(db, sentinel, "answered")
        await hook.wait_for_requests(2, BOUND)  # the sentinel's reply: the draft was left alone
        assert [json.loads(r.body)["data"]["response"] for r in hook.requests] == ["Hello from the bot"] * 2
        draft = await db.fetchrow(
            "select id, status from public.replies where message_id = $1 and kind = 'bot'", uuid.UUID(asked)
        )
        assert draft is not None and draft["status"] == "draft"

        edited = "We are open 9 to 18, Monday to Friday."
        params = {"p_conversation_id": conversation, "p_reply_id": str(draft["id"]), "p_content": edited}
        await rpc(agent.client, "approve_draft", params)
        await rpc(agent.client, "approve_draft", params)  # a double click
        [*_, approved] = await hook.wait_for_requests(3, BOUND)
        await reaches(db, asked, "answered")

    assert json.loads(approved.body)["data"]["response"] == edited
    headers = {k.lower(): v for k, v in approved.headers.items()}
    Webhook(webhook_secret(listener_settings)).verify(approved.body, headers)
    assert len({r.headers["webhook-id"] for r in hook.requests}) == 3  # its own webhook-id
    assert len(hook.requests) == 3  # delivered once


class ClaimWatch:
    """Wraps the listener's work queue: knows when no claim runs and the last one left nothing to claim (it
    came back empty, or said there was no more). Then every consumer waits for a hint (a consumer claims
    until a claim says it took the last one), and with the sweep far off only a change event can make the
    listener claim again."""

    def __init__(self) -> None:
        self.running = 0
        self.drained = False

    def wrap(self, queue: WorkQueue) -> WorkQueue:
        watch = self

        class Watched:
            def __getattr__(self, name: str) -> Any:
                return getattr(queue, name)

            async def claim(self, *args: Any) -> list[ClaimedMessage]:
                watch.running += 1
                try:
                    claimed = await queue.claim(*args)
                finally:
                    watch.running -= 1
                watch.drained = not claimed or not claimed[-1].more
                return claimed

        return cast(WorkQueue, Watched())

    def idle(self) -> bool:
        return self.running == 0 and self.drained


async def test_handing_back_wakes_the_listener_without_waiting_for_its_sweep(
    listener_settings: Settings, openai: respx.Route, say: Any, agent: SignedIn, db: asyncpg.Connection
) -> None:
    # No sweep and no burst window timer within the bound: only a change event can wake the listener.
    settings = listener_settings.model_copy(update={"sweep_interval_seconds": 600.0, "burst_window_ms": {"*": 0}})
    watch = ClaimWatch()
    async with composition.open_resources(settings) as resources:
        listener = composition.listener(resources, seams=composition.Seams(store=watch.wrap))
        task = asyncio.create_task(listener.run())
        try:
            conversation, first = await say("hello", chat="handed")
            await reaches(db, first, "answered")
            await rpc(agent.client, "take_over", {"p_conversation_id": conversation})
            _, waiting = await say("still there?", chat="handed")
            _, sentinel = await say("hello", chat="elsewhere")
            await reaches(db, sentinel, "answered")
            await eventually(watch.idle, BOUND)
            assert await state_of(db, waiting) == "pending"

            await rpc(agent.client, "hand_back", {"p_conversation_id": conversation})
            await reaches(db, waiting, "answered")
        finally:
            listener.stop()
            await asyncio.wait_for(task, 30)

    assert openai.call_count == 3
    assert user_lines(requests(openai)[-1])[-1] == "still there?"


@pytest.fixture
async def new_category(db: asyncpg.Connection) -> AsyncIterator[str]:
    name = f"warranty_{uuid.uuid4().hex[:6]}"
    yield name
    await db.execute("delete from public.categories where name = $1", name)


async def test_a_category_added_through_postgrest_reaches_the_next_model_request_without_a_restart(
    listener_settings: Settings, openai: respx.Route, say: Any, admin: SignedIn, db: asyncpg.Connection,
    new_category: str,
) -> None:  # fmt: skip
    # A sweep far beyond the bound: the table's change event, not the timer, makes the listener read it.
    settings = listener_settings.model_copy(update={"sweep_interval_seconds": 600.0})
    async with running_listener(settings):
        _, first = await say("hello", chat="before")
        await reaches(db, first, "answered")
        before = requests(openai)[0]
        assert new_category not in schema_enum(before)

        row = {"name": new_category, "description": "Repairs and replacements under warranty",
               "examples": ["my kettle broke after a week"], "position": 99}  # fmt: skip
        await admin.client.table("categories").insert(row).execute()

        async def next_request_knows_it() -> bool:
            _, message_id = await say("is this covered?", chat=f"after-{uuid.uuid4().hex[:6]}")
            await reaches(db, message_id, "answered")
            return new_category in schema_enum(requests(openai)[-1])

        await eventually(next_request_knows_it, BOUND, every=0.2)

    after = requests(openai)[-1]
    prompt = after["messages"][0]["content"]
    assert f"- {new_category}: Repairs and replacements under warranty" in prompt
    assert '"my kettle broke after a week"' in prompt
    assert schema_enum(after)[:-1] == schema_enum(before)  # the new one is offered last (position 99)


def schema_enum(request: dict[str, Any]) -> list[str]:
    enum: list[str] = request["response_format"]["json_schema"]["schema"]["properties"]["category"]["enum"]
    return enum


async def test_a_category_whose_action_is_handoff_hands_the_conversation_to_a_person(
    listener_settings: Settings, openai: respx.Route, say: Any, admin: SignedIn, db: asyncpg.Connection,
    new_category: str,
) -> None:  # fmt: skip
    await admin.client.table("categories").insert({"name": new_category, "action": "handoff"}).execute()
    openai.mock(return_value=openai_mock.answered(category=new_category, language="en", reply="Let me check"))
    async with running_listener(listener_settings):
        conversation, message_id = await say("my kettle broke", chat="warranty")
        await reaches(db, message_id, "handoff")

    mode = await db.fetchval("select bot_mode from public.conversations where id = $1", uuid.UUID(conversation))
    assert mode == "off"  # waits for a person until handed back


async def test_the_categories_the_model_is_offered_are_the_tables_active_ones(
    listener_settings: Settings, openai: respx.Route, say: Any, db: asyncpg.Connection
) -> None:
    async with running_listener(listener_settings):
        _, message_id = await say("hello", chat="enum")
        await reaches(db, message_id, "answered")
    active = await db.fetch("select name from public.categories where active order by position, name")
    assert schema_enum(requests(openai)[0]) == [row["name"] for row in active]


async def test_a_message_costs_four_postgrest_calls_intake_claim_complete_and_the_delivery_record(
    listener_settings: Settings, openai: respx.Route, say: Any, hook: Receiver, db: asyncpg.Connection
) -> None:
    # No sweep, no delivery poll and no burst timer within the test: every call after start-up is the message's.
    settings = listener_settings.model_copy(
        update={"sweep_interval_seconds": 600.0, "delivery_poll_seconds": 600.0, "burst_window_ms": {"*": 0}}
    )
    watch = ClaimWatch()
    calls: list[str] = []

    async def count(request: Any) -> None:
        if "/rest/v1/" in request.url.path:
            calls.append(f"{request.method} {request.url.path.split('/rest/v1/', 1)[1]}")

    async with composition.open_resources(settings) as resources:
        listener = composition.listener(resources, seams=composition.Seams(store=watch.wrap))
        task = asyncio.create_task(listener.run())
        try:
            await eventually(watch.idle, BOUND)  # the start-up claims are over
            resources.http.event_hooks["request"].append(count)
            _, message = await say("hello", chat="counted")  # the intake: one RPC of its own

            async def recorded() -> bool:
                state = await db.fetchval(
                    "select r.delivery_state from messages m join replies r on r.id = m.reply_id where m.id = $1",
                    uuid.UUID(message),
                )
                return bool(state == "delivered")

            await eventually(recorded, BOUND)
            await eventually(watch.idle, BOUND)
        finally:
            listener.stop()
            await asyncio.wait_for(task, 30)

    # The claim brings the context, the completion leases the delivery, the claim says it took the last one.
    assert calls == ["POST rpc/claim_messages", "POST rpc/complete_message", "POST rpc/record_delivery"]
    assert len(hook.requests) == 1
