"""The analytics views on a seeded history: the history is written with SQL from the data below, the
expected figures are computed from the same data in Python (not by the views' SQL), and an operator reads
the views through supabase-py."""

from __future__ import annotations

import math
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from .conftest import SignedIn

DAY1 = datetime(2001, 2, 3, 10, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
PRICE_IN, PRICE_OUT = 2.0, 8.0  # USD per million tokens, for the priced model


@dataclass
class Msg:
    at: float  # seconds after the conversation starts
    state: str
    category: str | None = None  # classified (by the priced model unless model2)
    tokens: tuple[int, int] = (0, 0)
    model2: bool = False
    outcome: str = ""  # what the views must say happened


@dataclass
class Rep:
    kind: str  # bot | operator | handoff_notice
    status: str
    at: float
    answers: list[int] = field(default_factory=list)  # indexes of the messages it answers (reply_id)
    names: int = 0  # the message it names (replies.message_id)
    delivery: tuple[str, int] = ("held", 0)
    approved_at: float | None = None
    edited: bool = False
    discard_reason: str | None = None
    resends: int = 0


@dataclass
class Conv:
    start: datetime
    messages: list[Msg]
    replies: list[Rep]


HISTORY = [
    Conv(DAY1, [Msg(0, "answered", "greeting", (100, 20), outcome="bot"),
                Msg(60, "answered", "pricing", (200, 40), outcome="bot")],
         [Rep("bot", "sent", 2, [0], 0, ("delivered", 1)), Rep("bot", "sent", 65, [1], 1, ("delivered", 3))]),
    Conv(DAY1, [Msg(0, "answered", "pricing", (150, 30), outcome="approved_draft")],
         [Rep("bot", "approved", 4, [0], 0, ("delivered", 1), approved_at=124, edited=True)]),
    Conv(DAY1, [Msg(0, "handoff", "refund", (120, 10), outcome="handoff")],
         [Rep("handoff_notice", "sent", 3, [0], 0, ("failed", 4), resends=1),
          Rep("bot", "discarded", 3, [], 0, discard_reason="operator"),
          Rep("operator", "sent", 300, [], 0, ("delivered", 2))]),
    Conv(DAY2, [Msg(0, "answered", outcome="operator_reply"), Msg(5, "failed", outcome="failed")],
         [Rep("operator", "sent", 40, [0], 0, ("delivered", 1))]),
    Conv(DAY2, [Msg(0, "pending", "greeting", (80, 8), outcome="waiting"),
                Msg(2, "draft", "sales", (50, 5), model2=True, outcome="waiting")],
         [Rep("bot", "discarded", 1, [], 0, discard_reason="takeover"), Rep("bot", "draft", 3, [1], 1)]),
    Conv(DAY2, [Msg(0, "answered", "sales", (60, 6), outcome="bot"), Msg(1, "answered", outcome="bot")],
         [Rep("bot", "sent", 5, [0, 1], 0, ("retrying", 2))]),
]  # fmt: skip


@dataclass(frozen=True)
class Seeded:
    platform: str
    model: str
    model2: str


async def seed(db: asyncpg.Connection, client: str, platform: str, model: str, model2: str) -> None:
    await db.execute("insert into public.clients (id) values ($1)", client)
    for n, conv in enumerate(HISTORY):
        cid = await db.fetchval(
            "insert into public.conversations (client_id, platform, chat_id) values ($1, $2, $3) returning id",
            client, platform, f"chat-{n}",
        )  # fmt: skip
        ids = []
        for m in conv.messages:
            at = conv.start + timedelta(seconds=m.at)
            mid = await db.fetchval(
                "insert into public.messages (conversation_id, client_id, direction, content, state, created_at)"
                " values ($1, $2, 'inbound', 'seeded', $3, $4) returning id",
                cid, client, m.state, at,
            )  # fmt: skip
            ids.append(mid)
            if m.category is not None:
                await db.execute(
                    "insert into public.classifications (message_id, conversation_id, category, intent, sentiment,"
                    " urgency, language, confidence, needs_human, model, prompt_version, prompt_tokens,"
                    " completion_tokens, created_at) values ($1, $2, $3, 'x', 'neutral', 'low', 'en', 0.9, false, $4,"
                    " 'v', $5, $6, $7)",
                    mid, cid, m.category, model2 if m.model2 else model, m.tokens[0], m.tokens[1], at,
                )  # fmt: skip
        for r in conv.replies:
            at = conv.start + timedelta(seconds=r.at)
            approved = None if r.approved_at is None else conv.start + timedelta(seconds=r.approved_at)
            rid = await db.fetchval(
                "insert into public.replies (message_id, conversation_id, content, model, kind, status, delivery_state,"
                " delivery_attempts, approved_at, original_content, discard_reason, resend_count, created_at,"
                " next_attempt_at) values ($1, $2, 'seeded', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
                " $12::timestamptz + interval '1 day') returning id",
                ids[r.names], cid, model if r.kind == "bot" else None, r.kind, r.status, r.delivery[0], r.delivery[1],
                approved, "original" if r.edited else None, r.discard_reason, r.resends, at,
            )  # fmt: skip
            for index in r.answers:
                await db.execute("update public.messages set reply_id = $1 where id = $2", rid, ids[index])


@pytest.fixture
async def seeded(db: asyncpg.Connection) -> AsyncIterator[Seeded]:
    tag = uuid.uuid4().hex[:8]
    client, platform, model, model2 = f"test-analytics-{tag}", f"an{tag}", f"priced-{tag}", f"unpriced-{tag}"
    await db.execute("insert into public.model_prices values ($1, $2, $3)", model, PRICE_IN, PRICE_OUT)
    await seed(db, client, platform, model, model2)
    yield Seeded(platform, model, model2)
    await db.execute("delete from public.clients where id = $1", client)
    await db.execute("delete from public.model_prices where model = $1", model)


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between the closest ranks (what percentile_cont does)."""
    ordered = sorted(values)
    position = p * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def day_of(conv: Conv) -> str:
    return conv.start.date().isoformat()


def category_of(conv: Conv, index: int) -> str | None:
    """A message answered by a bot reply that names another message has that message's category."""
    for r in conv.replies:
        if index in r.answers and r.kind != "operator":
            return conv.messages[r.names].category
    return conv.messages[index].category


async def read(agent: SignedIn, view: str, **equal: str) -> list[dict[str, Any]]:
    query = agent.client.table(view).select("*")
    for column, value in equal.items():
        query = query.eq(column, value)
    return list((await query.execute()).data)


async def test_messages_per_day_by_category_platform_and_outcome(seeded: Seeded, agent: SignedIn) -> None:
    expected: Counter[tuple[str, str | None, str]] = Counter()
    for conv in HISTORY:
        for index, m in enumerate(conv.messages):
            expected[(day_of(conv), category_of(conv, index), m.outcome)] += 1
    rows = await read(agent, "analytics_messages_daily", platform=seeded.platform)
    assert {(r["day"], r["category"], r["outcome"]): r["messages"] for r in rows} == dict(expected)


async def test_auto_resolve_rate(seeded: Seeded, agent: SignedIn) -> None:
    finished: Counter[str] = Counter()
    by_bot: Counter[str] = Counter()
    for conv in HISTORY:
        for m in conv.messages:
            finished[day_of(conv)] += m.outcome != "waiting"
            by_bot[day_of(conv)] += m.outcome == "bot"
    rows = await read(agent, "analytics_auto_resolve_daily", platform=seeded.platform)
    assert {r["day"]: (r["finished"], r["by_bot"], r["auto_resolve_rate"]) for r in rows} == {
        day: (finished[day], by_bot[day], pytest.approx(by_bot[day] / finished[day])) for day in finished
    }


async def test_time_to_first_response_for_bot_and_human(seeded: Seeded, agent: SignedIn) -> None:
    waits: dict[tuple[str, str], list[float]] = defaultdict(list)
    for conv in HISTORY:
        first = min(m.at for m in conv.messages)
        bot = [r.at for r in conv.replies if r.kind in ("bot", "handoff_notice") and r.status == "sent"]
        human = [r.approved_at if r.approved_at is not None else r.at for r in conv.replies
                 if r.kind == "operator" or r.status == "approved"]  # fmt: skip
        for responder, times in (("bot", bot), ("human", human)):
            if times:
                waits[(day_of(conv), responder)].append(min(times) - first)
    rows = await read(agent, "analytics_first_response", platform=seeded.platform)
    assert {(r["day"], r["responder"]): (r["conversations"], r["p50_seconds"], r["p90_seconds"]) for r in rows} == {
        key: (len(values), pytest.approx(percentile(values, 0.5)), pytest.approx(percentile(values, 0.9)))
        for key, values in waits.items()
    }


async def test_draft_approval_and_edit_rates(seeded: Seeded, agent: SignedIn) -> None:
    tally: dict[str, Counter[str]] = defaultdict(Counter)
    for conv in HISTORY:
        for r in conv.replies:
            if r.kind == "bot" and r.status in ("draft", "approved", "discarded") and r.discard_reason != "takeover":
                tally[day_of(conv)][r.status] += 1
                tally[day_of(conv)]["edited"] += r.edited

    def rate(part: int, whole: int) -> Any:
        return None if whole == 0 else pytest.approx(part / whole)

    rows = await read(agent, "analytics_drafts_daily", platform=seeded.platform)
    got = {r["day"]: (r["drafts"], r["approved"], r["edited"], r["discarded"], r["waiting"], r["approval_rate"],
                      r["edit_rate"]) for r in rows}  # fmt: skip
    assert got == {
        day: (t["draft"] + t["approved"] + t["discarded"], t["approved"], t["edited"], t["discarded"], t["draft"],
              rate(t["approved"], t["approved"] + t["discarded"]), rate(t["edited"], t["approved"]))
        for day, t in tally.items()
    }  # fmt: skip


async def test_delivery_success_and_retries(seeded: Seeded, agent: SignedIn) -> None:
    tally: dict[str, Counter[str]] = defaultdict(Counter)
    for conv in HISTORY:
        for r in conv.replies:
            if r.status in ("sent", "approved"):
                t = tally[day_of(conv)]
                t["replies"] += 1
                t[r.delivery[0]] += 1
                t["retried"] += r.delivery[1] > 1
                t["attempts"] += r.delivery[1]
                t["resends"] += r.resends
    rows = await read(agent, "analytics_delivery_daily", platform=seeded.platform)
    got = {r["day"]: (r["replies"], r["delivered"], r["failed"], r["in_flight"], r["retried"], r["attempts"],
                      r["resends"], r["success_rate"]) for r in rows}  # fmt: skip
    assert got == {
        day: (t["replies"], t["delivered"], t["failed"], t["pending"] + t["retrying"], t["retried"], t["attempts"],
              t["resends"], pytest.approx(t["delivered"] / (t["delivered"] + t["failed"] + t["stopped"])))
        for day, t in tally.items()
    }  # fmt: skip


async def test_tokens_and_estimated_cost_per_day_by_model(seeded: Seeded, agent: SignedIn) -> None:
    tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for conv in HISTORY:
        for m in conv.messages:
            if m.category is not None:
                t = tally[(day_of(conv), seeded.model2 if m.model2 else seeded.model)]
                t[0], t[1], t[2] = t[0] + 1, t[1] + m.tokens[0], t[2] + m.tokens[1]
    rows = [r for model in (seeded.model, seeded.model2) for r in await read(agent, "analytics_model_usage_daily",
                                                                               model=model)]  # fmt: skip
    got = {(r["day"], r["model"]): (r["calls"], r["prompt_tokens"], r["completion_tokens"], r["estimated_cost_usd"])
           for r in rows}  # fmt: skip
    expected = {
        key: (calls, prompt, completion,
              pytest.approx((prompt * PRICE_IN + completion * PRICE_OUT) / 1e6) if key[1] == seeded.model else None)
        for key, (calls, prompt, completion) in tally.items()
    }  # fmt: skip
    assert got == expected
    assert {day for day, _ in got} == {date(2001, 2, 3).isoformat(), date(2001, 2, 4).isoformat()}


async def test_views_are_documented_and_run_as_the_caller(db: asyncpg.Connection, anon: Any) -> None:
    rows = await db.fetch(
        "select c.relname, obj_description(c.oid, 'pg_class') as comment, c.reloptions from pg_class c"
        " where c.relkind = 'v' and c.relnamespace = 'public'::regnamespace"
        " and (c.relname like 'analytics_%' or c.relname = 'message_outcomes')"
    )
    assert len(rows) == 7
    for row in rows:
        assert row["comment"], row["relname"]
        assert "security_invoker=true" in (row["reloptions"] or []), row["relname"]
    with pytest.raises(Exception) as refused:
        await anon.table("analytics_messages_daily").select("*").execute()
    assert getattr(refused.value, "code", None) == "42501"
