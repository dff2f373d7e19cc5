"""PostgREST's optional features behind stack settings (``--db-aggregates-enabled``, ``--db-plan-enabled``),
on a stack of this module's own. Supabase leaves both off; ``test_rest_fidelity`` checks that default."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from neiromatrius_devstack.process import DevstackProcess

pytestmark = pytest.mark.local_only

SQL = Path(__file__).parent / "sql" / "30_fidelity.sql"


@pytest.fixture(scope="module")
def enabled_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    process = DevstackProcess(tmp_path_factory.mktemp("optional-features") / "data")
    env = process.start("--db-aggregates-enabled", "--db-plan-enabled")
    try:
        asyncio.run(_apply(env["DATABASE_URL"].replace("+asyncpg", "", 1)))
        yield env
    finally:
        process.stop()


async def _apply(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(SQL.read_text(encoding="utf-8"))
        await conn.execute("notify pgrst, 'reload schema'")
    finally:
        await conn.close()


@pytest.fixture
async def api(enabled_stack: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    key = enabled_stack["SUPABASE_SERVICE_ROLE_KEY"]
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=f"{enabled_stack['SUPABASE_URL']}/rest/v1", headers=headers) as client:
        yield client


async def _tasks(api: httpx.AsyncClient) -> str:
    mark = f"agg-{uuid.uuid4().hex[:10]}"
    rows = [{"title": t, "batch": mark} for t in ("a", "a", "b")]
    created = await api.post("/fid_tasks", json=rows)
    assert created.status_code == 201, created.text
    return mark


async def test_aggregates_count_and_group_by_the_other_columns(api: httpx.AsyncClient) -> None:
    mark = await _tasks(api)
    total = await api.get("/fid_tasks", params={"select": "count()", "batch": f"eq.{mark}"})
    assert total.status_code == 200, total.text
    assert total.json() == [{"count": 3}]
    grouped = await api.get(
        "/fid_tasks", params={"select": "title,n:count(),top:id.max()::text", "batch": f"eq.{mark}", "order": "title"}
    )
    assert grouped.status_code == 200, grouped.text
    body = grouped.json()
    assert [(r["title"], r["n"]) for r in body] == [("a", 2), ("b", 1)]
    assert all(isinstance(r["top"], str) for r in body)


async def test_aggregates_in_an_embedded_resource(api: httpx.AsyncClient) -> None:
    author = (
        await api.post("/fid_authors", json={"name": "A", "batch": "agg"}, headers={"Prefer": "return=representation"})
    ).json()[0]
    await api.post("/fid_books", json=[{"title": t, "author_id": author["id"]} for t in ("x", "y")])
    response = await api.get("/fid_authors", params={"select": "name,fid_books(count())", "id": f"eq.{author['id']}"})
    assert response.json() == [{"name": "A", "fid_books": [{"count": 2}]}]


async def test_aggregates_beside_an_embedded_resource_group_by_it(api: httpx.AsyncClient) -> None:
    rep = {"Prefer": "return=representation"}
    authors = (await api.post("/fid_authors", json=[{"name": "P"}, {"name": "Q"}], headers=rep)).json()
    books = [{"title": f"b{i}", "author_id": authors[i % 2]["id"]} for i in range(5)]
    ids = [b["id"] for b in (await api.post("/fid_books", json=books, headers=rep)).json()]
    response = await api.get(
        "/fid_books",
        params={"select": "n:count(),fid_authors(name)", "id": f"in.({','.join(map(str, ids))})"},
    )
    assert response.status_code == 200, response.text
    assert sorted((r["fid_authors"]["name"], r["n"]) for r in response.json()) == [("P", 3), ("Q", 2)]


async def test_the_plan_media_type_answers_the_statements_plan(api: httpx.AsyncClient) -> None:
    mark = await _tasks(api)
    plan = await api.get(
        "/fid_tasks", params={"batch": f"eq.{mark}"}, headers={"Accept": "application/vnd.pgrst.plan+json"}
    )
    assert plan.status_code == 200, plan.text
    assert plan.headers["content-type"] == 'application/vnd.pgrst.plan+json; for="application/json"; charset=utf-8'
    (explained,) = json.loads(plan.text)
    assert "Plan" in explained and "Plan Rows" in explained["Plan"]
    analyzed = await api.get(
        "/fid_tasks",
        params={"batch": f"eq.{mark}"},
        headers={"Accept": 'application/vnd.pgrst.plan+text; options="analyze"'},
    )
    assert analyzed.status_code == 200, analyzed.text
    assert analyzed.headers["content-type"] == (
        'application/vnd.pgrst.plan+text; for="application/json"; options=analyze; charset=utf-8'
    )
    assert "actual time=" in analyzed.text
