"""supabase/seed.sql: applies cleanly to a migrated database, is applied by the local stack only when it creates
its data folder (as ``make run`` asks), and a second run changes nothing."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from neiromatrius_devstack.process import DevstackProcess

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "supabase" / "seed.sql"
MIGRATIONS = ROOT / "supabase" / "migrations"

COUNTS = """
select (select count(*) from public.clients) as clients,
       (select count(*) from public.conversations) as conversations,
       (select count(*) from public.messages where direction = 'inbound') as inbound,
       (select count(*) from public.messages where direction = 'outbound') as outbound,
       (select count(*) from public.classifications) as classifications,
       (select count(*) from public.replies) as replies,
       (select count(*) from public.delivery_attempts) as attempts
"""


async def counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return dict(await conn.fetchrow(COUNTS))
    finally:
        await conn.close()


@pytest.mark.local_only
@pytest.mark.timeout(180)
async def test_the_seed_applies_to_a_fresh_stack_once_and_leaves_the_listener_nothing_to_do(tmp_path: Path) -> None:
    stack = DevstackProcess(tmp_path / "data", migrations_dir=MIGRATIONS)
    env = stack.start("--seed", str(SEED))
    dsn = env["DATABASE_URL"].replace("+asyncpg", "", 1)
    try:
        seeded = await counts(dsn)
        assert seeded == {
            "clients": 4, "conversations": 4, "inbound": 5, "outbound": 5,
            "classifications": 5, "replies": 5, "attempts": 5,
        }  # fmt: skip
        conn = await asyncpg.connect(dsn)
        try:
            languages = {row["language"] for row in await conn.fetch("select language from public.classifications")}
            assert languages == {"ru", "en"}
            states = await conn.fetch("select distinct state from public.messages where direction = 'inbound'")
            assert {row["state"] for row in states} == {"answered", "handoff"}  # nothing for the listener to claim
            deliveries = await conn.fetch("select distinct delivery_state from public.replies")
            assert [row["delivery_state"] for row in deliveries] == ["delivered"]  # nor to deliver
            await conn.execute(SEED.read_text(encoding="utf-8"))  # a second run changes nothing
            assert await counts(dsn) == seeded
            await conn.execute("delete from public.clients where id = 'demo_anna'")
        finally:
            await conn.close()
    finally:
        stack.stop()

    env = stack.start("--seed", str(SEED))  # the data folder exists now: no seed this time
    try:
        after = await counts(env["DATABASE_URL"].replace("+asyncpg", "", 1))
        assert after["clients"] == 3 and after["conversations"] == 3
    finally:
        stack.stop()
