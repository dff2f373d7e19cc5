"""PostgREST 12.2 behaviours a client library's own suite exercises (issue 13), one class per test:
filter values typed without a lossy cast, constraint names as embed targets, identity defaults,
max-affected on RPC, planned and estimated counts, self references, relationships through views,
colliding embed names, and the features Supabase leaves off (aggregates, the plan media type).

Tables: ``sql/30_fidelity.sql``. Every test runs unchanged against a real Supabase.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from tests.conftest import Stack

REPRESENTATION = {"Prefer": "return=representation"}


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"apikey": stack.service_key, "Authorization": f"Bearer {stack.service_key}"}
    async with httpx.AsyncClient(base_url=f"{stack.url}/rest/v1", headers=headers, timeout=30) as client:
        yield client


def _mark() -> str:
    return f"fid-{uuid.uuid4().hex[:12]}"


async def _country(api: httpx.AsyncClient) -> str:
    """One row whose columns all have a modifier that matters; its two-letter code is fresh."""
    iso = uuid.uuid4().hex[:2].upper()
    await api.delete("/fid_countries", params={"iso": f"eq.{iso}"})
    row = {
        "iso": iso, "name": "Algeria", "price": "1.01", "flags": "101", "opens": "09:00:00",
        "codes": [iso, "AL"], "zip": "16000",
    }  # fmt: skip
    created = await api.post("/fid_countries", json=row, headers=REPRESENTATION)
    assert created.status_code == 201, created.text
    return iso


@pytest.mark.parametrize(
    ("column", "value", "found"),
    [
        ("iso", "eq.{iso}", True),  # char(2): never cut to char(1)
        ("iso", "in.({iso},ZZ)", True),
        ("name", "eq.Algeria", True),
        ("name", "eq.Algeria-and-more", False),  # varchar(12): a longer value is not truncated into a match
        ("price", "eq.1.01", True),
        ("price", "eq.1.005", False),  # numeric(6,2): the value is not rounded to the column's scale
        ("flags", "eq.101", True),  # bit(3): not bit(1)
        ("opens", "eq.09:00:00", True),
        ("codes", "cs.{{{iso}}}", True),  # char(2)[]
        ("codes", "eq.{{{iso},AL}}", True),
        ("zip", "eq.not-a-zip", False),  # a domain's check does not apply to a filter value
    ],
)
async def test_filter_values_are_read_as_the_columns_base_type_without_a_modifier(
    api: httpx.AsyncClient, column: str, value: str, found: bool
) -> None:
    iso = await _country(api)
    response = await api.get("/fid_countries", params={"select": "iso", column: value.format(iso=iso)})
    assert response.status_code == 200, response.text
    assert ({"iso": iso} in response.json()) is found


async def test_body_values_keep_the_columns_modifier(api: httpx.AsyncClient) -> None:
    iso = await _country(api)
    patched = await api.patch(
        "/fid_countries", params={"iso": f"eq.{iso}"}, json={"price": 2.345}, headers=REPRESENTATION
    )
    assert patched.json()[0]["price"] == 2.35  # numeric(6,2) rounds what it stores
    too_long = await api.patch("/fid_countries", params={"iso": f"eq.{iso}"}, json={"name": "x" * 13})
    assert too_long.status_code == 400
    assert too_long.json()["code"] == "22001"  # value too long for type character varying(12)


async def test_rpc_arguments_of_char_and_bit_take_any_length(api: httpx.AsyncClient) -> None:
    response = await api.post("/rpc/fid_code", json={"code": "DZ", "flags": "101"})
    assert response.status_code == 200, response.text
    assert response.json() == "DZ/101"


async def _friends(api: httpx.AsyncClient) -> tuple[str, int, int]:
    mark = _mark()
    users = (await api.post("/fid_users", json=[{"name": "Ann", "batch": mark}, {"name": "Bob", "batch": mark}],
                            headers=REPRESENTATION)).json()  # fmt: skip
    ann, bob = users[0]["id"], users[1]["id"]
    await api.post("/fid_best_friends", json={"first_user": ann, "second_user": bob})
    return mark, ann, bob


async def test_a_foreign_key_constraint_name_is_an_embed_target_both_ways(api: httpx.AsyncClient) -> None:
    mark, _ann, bob = await _friends(api)
    children = await api.get(
        "/fid_users",
        params={"select": "name,first_friend_of:fid_best_friends_first_user_fkey(second_user)", "batch": f"eq.{mark}",
                "order": "id"},
    )  # fmt: skip
    assert children.status_code == 200, children.text
    assert children.json() == [
        {"name": "Ann", "first_friend_of": [{"second_user": bob}]},
        {"name": "Bob", "first_friend_of": []},
    ]
    parents = await api.get(
        "/fid_best_friends",
        params={"select": "first:fid_best_friends_first_user_fkey(name),second:fid_best_friends_second_user_fkey(name)",
                "second_user": f"eq.{bob}"},
    )  # fmt: skip
    assert parents.status_code == 200, parents.text
    assert parents.json() == [{"first": {"name": "Ann"}, "second": {"name": "Bob"}}]


async def test_two_embeds_answering_to_one_name_are_refused(api: httpx.AsyncClient) -> None:
    _, _ann, bob = await _friends(api)
    params = {"select": "id,fid_users!first_user(name),fid_users!second_user(name)", "second_user": f"eq.{bob}"}
    response = await api.get("/fid_best_friends", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "42712"
    assert body["message"] == 'table name "fid_best_friends_fid_users_1" specified more than once'
    aliased = await api.get(
        "/fid_best_friends",
        params={"select": "first:fid_users!first_user(name),second:fid_users!second_user(name)",
                "second_user": f"eq.{bob}"},
    )  # fmt: skip
    assert aliased.json() == [{"first": {"name": "Ann"}, "second": {"name": "Bob"}}]


async def test_missing_default_fills_identity_columns(api: httpx.AsyncClient) -> None:
    mark = _mark()
    response = await api.post(
        "/fid_users",
        params={"columns": "id,name,batch"},
        json=[{"name": "Ann", "batch": mark}, {"id": 9_000_000_000 + uuid.uuid4().int % 10**6, "name": "Bob",
                                                "batch": mark}],
        headers={"Prefer": "return=representation,missing=default"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    ann, bob = response.json()
    assert isinstance(ann["id"], int) and ann["id"] < 9_000_000_000  # from the identity sequence
    assert bob["id"] >= 9_000_000_000  # given, so kept


async def test_max_affected_is_enforced_on_rpc_and_rolls_the_call_back(api: httpx.AsyncClient) -> None:
    mark = _mark()
    await api.post("/fid_tasks", json=[{"title": f"t{i}", "batch": mark} for i in range(3)])
    refused = await api.post("/rpc/fid_retitle", json={"b": mark}, headers={"Prefer": "handling=strict,max-affected=2"})
    assert refused.status_code == 400
    assert refused.json()["code"] == "PGRST124"
    titles = await api.get("/fid_tasks", params={"select": "title", "batch": f"eq.{mark}", "order": "id"})
    assert titles.json() == [{"title": "t0"}, {"title": "t1"}, {"title": "t2"}]
    allowed = await api.post("/rpc/fid_retitle", json={"b": mark}, headers={"Prefer": "handling=strict,max-affected=3"})
    assert allowed.status_code == 200, allowed.text
    assert sorted(r["title"] for r in allowed.json()) == ["t0!", "t1!", "t2!"]


async def _plan_rows(db: asyncpg.Connection, sql: str, *args: object) -> int:
    plan = json.loads(await db.fetchval(f"explain (format json) {sql}", *args))
    return int(plan[0]["Plan"]["Plan Rows"])


async def test_planned_counts_are_the_planners_estimate(api: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    mark = _mark()
    await db.execute(
        "insert into public.fid_tasks (title, batch) select 't' || i, $1 from generate_series(1, 40) i", mark
    )
    await db.execute("analyze public.fid_tasks")
    estimate = await _plan_rows(db, "select 1 from public.fid_tasks where batch = $1", mark)
    response = await api.get(
        "/fid_tasks", params={"batch": f"eq.{mark}", "limit": "1"}, headers={"Prefer": "count=planned"}
    )
    assert response.headers["content-range"] == f"0-0/{estimate}"
    assert response.status_code == (206 if estimate > 1 else 200)
    rpc = await api.get("/rpc/fid_tasks_in", params={"b": mark, "limit": "1"}, headers={"Prefer": "count=planned"})
    # A function's estimate depends on how the call is planned (inlined or not): only its form is fixed.
    span, total = rpc.headers["content-range"].split("/")
    assert (span, total.isdigit()) == ("0-0", True)


async def test_estimated_counts_are_exact_up_to_max_rows_then_planned(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    small, large = _mark(), _mark()
    await db.execute("insert into public.fid_tasks (title, batch) select 't', $1 from generate_series(1, 7)", small)
    await db.execute("insert into public.fid_tasks (title, batch) select 't', $1 from generate_series(1, 1500)", large)
    await db.execute("analyze public.fid_tasks")
    exact = await api.get(
        "/fid_tasks", params={"batch": f"eq.{small}", "limit": "2"}, headers={"Prefer": "count=estimated"}
    )
    assert (exact.status_code, exact.headers["content-range"]) == (206, "0-1/7")
    estimate = await _plan_rows(db, "select 1 from public.fid_tasks where batch = $1", large)
    beyond = await api.get(
        "/fid_tasks", params={"batch": f"eq.{large}", "limit": "2"}, headers={"Prefer": "count=estimated"}
    )
    # The exact count stops at db-max-rows + 1 (1001); past max-rows the larger of it and the estimate wins.
    assert beyond.headers["content-range"] == f"0-1/{max(1001, estimate)}"
    assert beyond.status_code == 206


async def test_a_self_reference_by_table_name_embeds_the_children(api: httpx.AsyncClient) -> None:
    mark = _mark()
    root = (await api.post("/fid_collections", json={"name": "root", "batch": mark}, headers=REPRESENTATION)).json()[0]
    kids = [{"name": n, "batch": mark, "parent_id": root["id"]} for n in ("a", "b")]
    await api.post("/fid_collections", json=kids)
    children = await api.get(
        "/fid_collections",
        params={"select": "name,fid_collections(name)", "id": f"eq.{root['id']}", "fid_collections.order": "name"},
    )
    assert children.status_code == 200, children.text
    assert children.json() == [{"name": "root", "fid_collections": [{"name": "a"}, {"name": "b"}]}]
    parent = await api.get(
        "/fid_collections", params={"select": "name,parent:parent_id(name)", "batch": f"eq.{mark}", "name": "eq.a"}
    )
    assert parent.json() == [{"name": "a", "parent": {"name": "root"}}]


async def test_relationships_are_found_through_views(api: httpx.AsyncClient) -> None:
    mark = _mark()
    author = (await api.post("/fid_authors", json={"name": "Le Guin", "batch": mark}, headers=REPRESENTATION)).json()[0]
    book = (
        await api.post("/fid_books", json={"title": "Lathe", "author_id": author["id"]}, headers=REPRESENTATION)
    ).json()[0]

    view_to_table = await api.get(
        "/fid_book_list", params={"select": "title,fid_authors(name)", "book_id": f"eq.{book['id']}"}
    )
    assert view_to_table.status_code == 200, view_to_table.text
    assert view_to_table.json() == [{"title": "Lathe", "fid_authors": {"name": "Le Guin"}}]

    table_to_view = await api.get(
        "/fid_authors", params={"select": "name,fid_book_list(title,writer)", "batch": f"eq.{mark}"}
    )
    assert table_to_view.json() == [{"name": "Le Guin", "fid_book_list": [{"title": "Lathe", "writer": author["id"]}]}]

    view_to_view = await api.get(
        "/fid_author_list", params={"select": "name,fid_book_list(title)", "batch": f"eq.{mark}"}
    )
    assert view_to_view.json() == [{"name": "Le Guin", "fid_book_list": [{"title": "Lathe"}]}]


async def test_aggregates_are_off_as_on_supabase(api: httpx.AsyncClient) -> None:
    for select in ("count()", "id.sum()", "title,id.max()"):
        response = await api.get("/fid_tasks", params={"select": select})
        assert response.status_code == 400, select
        assert response.json() == {
            "code": "PGRST123", "details": None, "hint": None, "message": "Use of aggregate functions is not allowed",
        }  # fmt: skip


async def test_the_plan_media_type_is_off_as_on_supabase(api: httpx.AsyncClient) -> None:
    response = await api.get("/fid_tasks", headers={"Accept": "application/vnd.pgrst.plan+json"})
    assert response.status_code == 406
    body = response.json()
    assert body["code"] == "PGRST107"
    assert body["message"] == "None of these media types are available: application/vnd.pgrst.plan+json"
