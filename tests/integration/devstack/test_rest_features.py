"""Less common PostgREST features supabase-js and hand-written requests use: JSON paths, spreads,
embedded filters, CSV, stripped nulls, PUT, strict preferences, array arguments.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import Stack


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"apikey": stack.service_key, "Authorization": f"Bearer {stack.service_key}"}
    async with httpx.AsyncClient(base_url=f"{stack.url}/rest/v1", headers=headers, timeout=30) as client:
        yield client


async def _graph(api: httpx.AsyncClient) -> str:
    """Two todos in a fresh batch: one owned by Ann with two comments, one with neither."""
    mark = f"f-{uuid.uuid4()}"
    rep = {"Prefer": "return=representation"}
    user = (await api.post("/rest_users", json={"name": "Ann"}, headers=rep)).json()[0]
    rows = [
        {"title": "owned", "owner": user["id"], "batch": mark, "data": {"a": {"b": 2}, "list": [10, 20]}},
        {"title": "orphan", "owner": None, "batch": mark, "data": None},
    ]
    todos = (await api.post("/rest_todos", json=rows, headers=rep)).json()
    comments = [
        {"todo_id": todos[0]["id"], "body": "good", "stars": 5},
        {"todo_id": todos[0]["id"], "body": "meh", "stars": 2},
    ]
    await api.post("/rest_comments", json=comments)
    return mark


async def test_json_paths_and_casts_in_select_and_filters(api: httpx.AsyncClient) -> None:
    mark = await _graph(api)
    response = await api.get(
        "/rest_todos",
        params={
            "select": "title,b:data->a->>b,second:data->list->1,id_text:id::text",
            "data->a->>b": "eq.2",
            "batch": f"eq.{mark}",
        },
    )
    assert response.status_code == 200, response.text
    (row,) = response.json()
    assert (row["title"], row["b"], row["second"]) == ("owned", "2", 20)
    assert isinstance(row["id_text"], str)


async def test_spread_and_embedded_null_filters(api: httpx.AsyncClient) -> None:
    mark = await _graph(api)
    spread = await api.get(
        "/rest_todos", params={"select": "title,...rest_users(name)", "batch": f"eq.{mark}", "order": "title"}
    )
    assert spread.json() == [{"title": "orphan", "name": None}, {"title": "owned", "name": "Ann"}]
    owned = await api.get(
        "/rest_todos",
        params={"select": "title,rest_users(name)", "rest_users": "not.is.null", "batch": f"eq.{mark}"},
        headers={"Prefer": "count=exact"},
    )
    assert owned.json() == [{"title": "owned", "rest_users": {"name": "Ann"}}]
    assert owned.headers["content-range"] == "0-0/1"
    good = await api.get(
        "/rest_todos",
        params={
            "select": "title,rest_comments(body)",
            "batch": f"eq.{mark}",
            "rest_comments.or": "(stars.gte.4,body.eq.none)",
            "title": "eq.owned",
        },
    )
    assert good.json() == [{"title": "owned", "rest_comments": [{"body": "good"}]}]


async def test_csv_and_stripped_nulls(api: httpx.AsyncClient) -> None:
    mark = await _graph(api)
    params = {"select": "title,owner", "batch": f"eq.{mark}", "order": "title"}
    csv = await api.get("/rest_todos", params=params, headers={"Accept": "text/csv"})
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    lines = csv.text.split("\n")
    assert lines[0] == "title,owner"
    assert lines[1] == "orphan,"
    stripped = await api.get(
        "/rest_todos", params=params, headers={"Accept": "application/vnd.pgrst.array+json;nulls=stripped"}
    )
    assert stripped.json()[0] == {"title": "orphan"}


async def test_put_upserts_one_row_by_primary_key(api: httpx.AsyncClient) -> None:
    ident = uuid.uuid4().int % 2_000_000_000
    rep = {"Prefer": "return=representation"}
    created = await api.put("/rest_items", params={"id": f"eq.{ident}"}, json={"id": ident, "name": "a"}, headers=rep)
    assert (created.status_code, created.json()) == (201, [{"id": ident, "name": "a", "qty": 7, "note": None}])
    replaced = await api.put("/rest_items", params={"id": f"eq.{ident}"}, json={"id": ident, "name": "b"})
    assert replaced.status_code == 204
    mismatch = await api.put("/rest_items", params={"id": f"eq.{ident}"}, json={"id": ident + 1, "name": "c"})
    assert (mismatch.status_code, mismatch.json()["code"]) == (400, "PGRST115")
    stored = await api.get("/rest_items", params={"id": f"eq.{ident}", "select": "name"})
    assert stored.json() == [{"name": "b"}]


async def test_strict_preferences(api: httpx.AsyncClient) -> None:
    invalid = await api.get("/rest_todos", params={"limit": "1"}, headers={"Prefer": "handling=strict, unknown=1"})
    assert (invalid.status_code, invalid.json()["code"]) == (400, "PGRST122")
    mark = await _graph(api)
    too_many = await api.patch(
        "/rest_todos",
        params={"batch": f"eq.{mark}"},
        json={"done": True},
        headers={"Prefer": "handling=strict, max-affected=1"},
    )
    assert (too_many.status_code, too_many.json()["code"]) == (400, "PGRST124")
    untouched = await api.get("/rest_todos", params={"batch": f"eq.{mark}", "done": "is.true"})
    assert untouched.json() == []


async def test_array_arguments_by_get_and_post(api: httpx.AsyncClient) -> None:
    by_get = await api.get("/rpc/rest_sum", params={"nums": "{1,2,3}"})
    assert (by_get.status_code, by_get.json()) == (200, 6)
    by_post = await api.post("/rpc/rest_sum", json={"nums": [4, 5]})
    assert (by_post.status_code, by_post.json()) == (200, 9)
