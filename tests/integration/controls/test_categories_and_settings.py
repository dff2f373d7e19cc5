"""The business's own rules, edited through the Data API under RLS: categories (seeded from today's
CATEGORIES), the bot settings, handoff notices and model prices; and how complete_message obeys them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from postgrest import APIError

from neiromatrius.config import DEFAULT_CATEGORIES

from .conftest import Pipeline, SignedIn

COLUMNS = "name, description, examples, action, min_confidence, handoff_urgency, active, position"


@pytest.fixture
async def categories_restored(db: asyncpg.Connection) -> AsyncIterator[None]:
    """Admins edit the shared categories in these tests: put the seeded rows back afterwards."""
    saved = await db.fetch(f"select {COLUMNS} from public.categories")
    prices = await db.fetch("select model, input_usd_per_million, output_usd_per_million from public.model_prices")
    notices = await db.fetch("select language, content, active from public.handoff_messages")
    yield
    async with db.transaction():
        await db.execute("delete from public.categories")
        await db.executemany(
            f"insert into public.categories ({COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8)",
            [tuple(row) for row in saved],
        )
        await db.execute("delete from public.model_prices")
        await db.executemany("insert into public.model_prices values ($1, $2, $3)", [tuple(row) for row in prices])
        await db.execute("delete from public.handoff_messages")
        await db.executemany("insert into public.handoff_messages (language, content, active) values ($1, $2, $3)",
                             [tuple(row) for row in notices])  # fmt: skip


async def test_categories_are_seeded_from_todays_categories_with_todays_behaviour(agent: SignedIn) -> None:
    rows = (await agent.client.table("categories").select("*").order("position").execute()).data
    assert tuple(row["name"] for row in rows) == DEFAULT_CATEGORIES
    assert {(r["action"], r["min_confidence"], r["handoff_urgency"], r["active"]) for r in rows} == {
        ("auto", 0, None, True)
    }
    assert all(row["description"] for row in rows)


async def test_an_agent_cannot_change_categories_settings_notices_or_prices(
    agent: SignedIn, db: asyncpg.Connection
) -> None:
    before = await db.fetch("select t::text from public.categories t order by id")
    client = agent.client
    with pytest.raises(APIError) as insert:
        await client.table("categories").insert({"name": "spam"}).execute()
    assert insert.value.code == "42501"
    assert (await client.table("categories").update({"action": "handoff"}).eq("name", "sales").execute()).data == []
    assert (await client.table("categories").delete().eq("name", "sales").execute()).data == []
    assert (await client.table("bot_settings").update({"default_bot_mode": "off"}).eq("id", True).execute()).data == []
    assert (await client.table("model_prices").update({"input_usd_per_million": 99}).eq("model", "gpt-4o-mini")
            .execute()).data == []  # fmt: skip
    with pytest.raises(APIError) as notice:
        await client.table("handoff_messages").insert({"language": "de", "content": "Hallo"}).execute()
    assert notice.value.code == "42501"
    assert await db.fetch("select t::text from public.categories t order by id") == before
    assert await db.fetchval("select default_bot_mode from public.bot_settings") == "auto"


async def test_an_admin_edits_categories_and_malformed_edits_are_refused_by_constraints(
    admin: SignedIn, categories_restored: None
) -> None:
    table = admin.client.table
    edited = await table("categories").update({"description": "Wants to buy.", "min_confidence": 0.7}).eq(
        "name", "sales").execute()  # fmt: skip
    assert [(r["description"], r["min_confidence"]) for r in edited.data] == [("Wants to buy.", 0.7)]
    added = await table("categories").insert({"name": "warranty", "action": "draft", "examples": ["Is it covered?"]})\
        .execute()  # fmt: skip
    assert added.data[0]["name"] == "warranty"

    refusals: list[tuple[dict[str, Any], str, str]] = [
        ({"name": ""}, "23514", "categories_name_is_a_snake_case_label"),
        ({"name": "warranty"}, "23505", "categories_name_unique"),
        ({"name": "x1", "min_confidence": 1.5}, "23514", "categories_min_confidence_between_0_and_1"),
        ({"name": "x2", "min_confidence": -0.1}, "23514", "categories_min_confidence_between_0_and_1"),
        ({"name": "x3", "action": "maybe"}, "23514", "categories_action_check"),
        ({"name": "x4", "handoff_urgency": "urgent"}, "23514", "categories_handoff_urgency_check"),
    ]
    for row, code, constraint in refusals:
        with pytest.raises(APIError) as refused:
            await table("categories").insert(row).execute()
        assert (refused.value.code, constraint in (refused.value.message or "")) == (code, True), row
    with pytest.raises(APIError) as renamed:
        await table("categories").update({"name": "sales"}).eq("name", "warranty").execute()
    assert renamed.value.code == "23505"


async def test_complete_obeys_each_categorys_action_threshold_and_urgency_rule(
    pipeline: Pipeline, admin: SignedIn, categories_restored: None
) -> None:
    table = admin.client.table
    await table("categories").update({"action": "draft"}).eq("name", "pricing").execute()
    await table("categories").update({"action": "handoff"}).eq("name", "refund").execute()
    await table("categories").update({"min_confidence": 0.8}).eq("name", "sales").execute()
    await table("categories").update({"handoff_urgency": "high"}).eq("name", "technical_support").execute()

    cases = [
        ({"category": "pricing"}, "draft"),
        ({"category": "refund"}, "handoff"),
        ({"category": "sales", "confidence": 0.5}, "draft"),
        ({"category": "sales", "confidence": 0.85}, "sent"),
        ({"category": "technical_support", "urgency": "critical"}, "handoff"),
        ({"category": "technical_support", "urgency": "high"}, "handoff"),
        ({"category": "technical_support", "urgency": "normal"}, "sent"),
        ({"category": "greeting", "needs_human": True}, "handoff"),
        ({"category": "not_in_the_table"}, "sent"),  # a listener's own CATEGORIES: today's behaviour
    ]
    for index, (answer, outcome) in enumerate(cases):
        _, message = await pipeline.intake("A question", chat=f"rules-{index}")
        done = await pipeline.answer(message, **answer)
        assert done["outcome"] == outcome, answer


async def test_admins_set_the_default_mode_notices_and_prices(
    pipeline: Pipeline, admin: SignedIn, db: asyncpg.Connection, settings_row: Callable[..., Awaitable[None]],
    categories_restored: None,
) -> None:  # fmt: skip
    table = admin.client.table
    changed = await table("bot_settings").update({"default_bot_mode": "draft"}).eq("id", True).execute()
    assert changed.data[0]["default_bot_mode"] == "draft"
    conversation, message = await pipeline.intake("Hi", chat="new-chat")
    assert await db.fetchval("select bot_mode from public.conversations where id = $1", conversation) == "draft"
    assert (await pipeline.answer(message))["outcome"] == "draft"
    with pytest.raises(APIError) as bad_mode:
        await table("bot_settings").update({"default_bot_mode": "sometimes"}).eq("id", True).execute()
    assert bad_mode.value.code == "23514"

    await table("handoff_messages").insert({"language": "de", "content": "Ein Kollege meldet sich."}).execute()
    _, german = await pipeline.intake("Hilfe", chat="de-chat")
    await db.execute("update public.conversations set bot_mode = 'auto' where chat_id = 'de-chat'")
    done = await pipeline.answer(german, language="de", needs_human=True)
    assert await db.fetchval("select content from public.replies where id = $1", done["delivered_reply_id"]) == (
        "Ein Kollege meldet sich."
    )
    with pytest.raises(APIError) as empty_notice:
        await table("handoff_messages").insert({"language": "fr", "content": "  "}).execute()
    assert empty_notice.value.code == "23514"

    priced = await table("model_prices").insert({"model": "test-model", "input_usd_per_million": 1,
                                                 "output_usd_per_million": 2}).execute()  # fmt: skip
    assert priced.data[0]["model"] == "test-model"
