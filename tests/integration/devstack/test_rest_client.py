"""supabase-py's async client against the REST API: the calls the service makes, unchanged.

Every test works on rows it creates, marked with a fresh ``batch``, so tests neither see nor
disturb each other's data, locally or on a real Supabase project.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from postgrest.exceptions import APIError
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from tests.conftest import Stack

ClientFactory = Callable[[str, str | None], Awaitable[AsyncClient]]


@pytest.fixture
async def connect(stack: Stack) -> AsyncIterator[ClientFactory]:
    """Open supabase clients (``key``, optional user ``token``) sharing one HTTP client, closed after the test."""
    async with httpx.AsyncClient(timeout=30) as http:

        async def factory(key: str, token: str | None = None) -> AsyncClient:
            options = AsyncClientOptions(httpx_client=http)
            if token:
                options.headers["Authorization"] = f"Bearer {token}"
            return await acreate_client(stack.url, key, options)

        yield factory


@pytest.fixture
async def service(stack: Stack, connect: ClientFactory) -> AsyncClient:
    return await connect(stack.service_key, None)


def batch() -> str:
    return f"b-{uuid.uuid4()}"


async def test_insert_returns_the_row_with_its_defaults(service: AsyncClient) -> None:
    mark = batch()
    result = await service.table("rest_todos").insert({"title": "write tests", "batch": mark}).execute()
    assert len(result.data) == 1
    row = result.data[0]
    assert row["title"] == "write tests"
    assert row["done"] is False
    assert row["tags"] == []
    assert isinstance(row["id"], int)
    assert row["created_at"].endswith("+00:00")


async def test_bulk_insert_unions_keys_and_applies_defaults_when_asked(service: AsyncClient) -> None:
    first, second = (uuid.uuid4().int % 2_000_000_000 for _ in range(2))
    rows = [{"id": first, "name": "one"}, {"id": second, "name": "two", "qty": 3}]
    result = await service.table("rest_items").insert(rows, default_to_null=False).execute()
    by_id = {row["id"]: row for row in result.data}
    assert by_id[first]["qty"] == 7  # the column DEFAULT, not NULL
    assert by_id[second]["qty"] == 3


async def test_bulk_insert_without_defaults_sends_null(service: AsyncClient) -> None:
    ident = uuid.uuid4().int % 2_000_000_000
    rows = [{"id": ident, "name": "one", "note": "n"}, {"id": ident + 1, "name": "two"}]
    result = await service.table("rest_items").insert(rows).execute()
    notes = sorted((row["id"], row["note"]) for row in result.data)
    assert notes == [(ident, "n"), (ident + 1, None)]


async def test_select_with_filters_order_range_and_exact_count(service: AsyncClient) -> None:
    mark = batch()
    await (
        service.table("rest_todos")
        .insert(
            [
                {"title": f"t{i}", "batch": mark, "priority": i, "done": i % 2 == 0, "tags": [f"tag{i}"]}
                for i in range(6)
            ]
        )
        .execute()
    )
    result = await (
        service.table("rest_todos")
        .select("title,priority", count="exact")
        .eq("batch", mark)
        .gte("priority", 1)
        .in_("title", ["t1", "t2", "t3", "t5", "x,y"])
        .order("priority", desc=True)
        .range(0, 1)
        .execute()
    )
    assert result.data == [{"title": "t5", "priority": 5}, {"title": "t3", "priority": 3}]
    assert result.count == 4
    odd_or_first = await (
        service.table("rest_todos")
        .select("title")
        .eq("batch", mark)
        .or_("priority.eq.0,and(done.is.false,priority.lt.4)")
        .order("title")
        .execute()
    )
    assert [row["title"] for row in odd_or_first.data] == ["t0", "t1", "t3"]
    tagged = await service.table("rest_todos").select("title").eq("batch", mark).contains("tags", ["tag4"]).execute()
    assert tagged.data == [{"title": "t4"}]
    like = await service.table("rest_todos").select("title").eq("batch", mark).ilike("title", "T%").execute()
    assert len(like.data) == 6


async def test_embeds_to_one_to_many_and_many_to_many(service: AsyncClient) -> None:
    mark = batch()
    user = (await service.table("rest_users").insert({"name": "Ann"}).execute()).data[0]
    todos = (
        await service.table("rest_todos")
        .insert([{"title": "with comments", "owner": user["id"], "batch": mark}, {"title": "bare", "batch": mark}])
        .execute()
    ).data
    with_comments = todos[0]["id"]
    await (
        service.table("rest_comments")
        .insert(
            [
                {"todo_id": with_comments, "body": "first", "stars": 1},
                {"todo_id": with_comments, "body": "second", "stars": 5},
            ]
        )
        .execute()
    )
    tag = (await service.table("rest_tags").insert({"name": mark}).execute()).data[0]
    await service.table("rest_todo_tags").insert({"todo_id": with_comments, "tag_id": tag["id"]}).execute()

    result = await (
        service.table("rest_todos")
        .select("title,owner:rest_users(name),rest_comments(body,stars),rest_tags(name)")
        .eq("batch", mark)
        .order("title")
        .order("stars", desc=True, foreign_table="rest_comments")
        .execute()
    )
    assert result.data == [
        {"title": "bare", "owner": None, "rest_comments": [], "rest_tags": []},
        {
            "title": "with comments",
            "owner": {"name": "Ann"},
            "rest_comments": [{"body": "second", "stars": 5}, {"body": "first", "stars": 1}],
            "rest_tags": [{"name": mark}],
        },
    ]
    inner = await service.table("rest_todos").select("title,rest_comments!inner(body)").eq("batch", mark).execute()
    assert [row["title"] for row in inner.data] == ["with comments"]
    filtered = await (
        service.table("rest_todos")
        .select("title,rest_comments!inner(body)")
        .eq("batch", mark)
        .eq("rest_comments.stars", 5)
        .execute()
    )
    assert filtered.data == [{"title": "with comments", "rest_comments": [{"body": "second"}]}]


async def test_update_and_delete_return_the_affected_rows(service: AsyncClient) -> None:
    mark = batch()
    rows = (
        await service.table("rest_todos")
        .insert([{"title": "a", "batch": mark}, {"title": "b", "batch": mark}])
        .execute()
    ).data
    updated = await service.table("rest_todos").update({"done": True}).eq("id", rows[0]["id"]).execute()
    assert [(row["id"], row["done"]) for row in updated.data] == [(rows[0]["id"], True)]
    none = await service.table("rest_todos").update({"done": True}).eq("batch", "no such batch").execute()
    assert none.data == []
    deleted = await service.table("rest_todos").delete().eq("batch", mark).execute()
    assert sorted(row["title"] for row in deleted.data) == ["a", "b"]
    left = await service.table("rest_todos").select("id", count="exact").eq("batch", mark).execute()
    assert left.count == 0


async def test_upsert_merges_or_ignores_duplicates(service: AsyncClient) -> None:
    ident = uuid.uuid4().int % 2_000_000_000
    await service.table("rest_items").upsert({"id": ident, "name": "first"}).execute()
    merged = await service.table("rest_items").upsert({"id": ident, "name": "second"}).execute()
    assert merged.data == [{"id": ident, "name": "second", "qty": 7, "note": None}]
    ignored = await service.table("rest_items").upsert({"id": ident, "name": "third"}, ignore_duplicates=True).execute()
    assert ignored.data == []
    by_name = await service.table("rest_items").upsert({"id": ident, "name": "fourth"}, on_conflict="id").execute()
    assert by_name.data[0]["name"] == "fourth"
    stored = await service.table("rest_items").select("name").eq("id", ident).single().execute()
    assert stored.data == {"name": "fourth"}


async def test_rpc_by_post_and_get(service: AsyncClient) -> None:
    mark = batch()
    assert (await service.rpc("rest_add", {"a": 2, "b": 3}).execute()).data == 5
    assert (await service.rpc("rest_add_default", {"a": 2}).execute()).data == 12
    await service.table("rest_todos").insert([{"title": f"{mark} one"}, {"title": f"{mark} two"}]).execute()
    found = await service.rpc("rest_search", {"q": mark}, get=True).execute()
    assert [row["title"] for row in found.data] == [f"{mark} one", f"{mark} two"]
    shaped = await service.rpc("rest_search", {"q": mark}).select("title").eq("title", f"{mark} two").execute()
    assert shaped.data == [{"title": f"{mark} two"}]
    echoed = await service.rpc("rest_echo", {"nested": {"list": [1, 2]}, "n": None}).execute()
    assert echoed.data == {"nested": {"list": [1, 2]}, "n": None}
    assert (await service.rpc("rest_series", {"n": 3}).execute()).data == [1, 2, 3]
    assert (await service.rpc("rest_pair", {"n": 2}, get=True).execute()).data == [
        {"k": 1, "v": "v1"},
        {"k": 2, "v": "v2"},
    ]
    assert (await service.rpc("rest_noop").execute()).data == []
    counted = await service.rpc("rest_series", {"n": 4}, count="exact").execute()
    assert counted.count == 4


async def test_single_and_maybe_single(service: AsyncClient) -> None:
    mark = batch()
    await service.table("rest_todos").insert([{"title": "x", "batch": mark}, {"title": "y", "batch": mark}]).execute()
    one = await service.table("rest_todos").select("title").eq("batch", mark).eq("title", "x").single().execute()
    assert one.data == {"title": "x"}
    with pytest.raises(APIError) as many:
        await service.table("rest_todos").select("title").eq("batch", mark).single().execute()
    assert many.value.code == "PGRST116"
    missing = (
        await service.table("rest_todos").select("title").eq("batch", mark).eq("title", "z").maybe_single().execute()
    )
    assert missing is None
    found = (
        await service.table("rest_todos").select("title").eq("batch", mark).eq("title", "y").maybe_single().execute()
    )
    assert found is not None and found.data == {"title": "y"}


async def test_errors_come_back_as_api_errors_with_postgrest_codes(service: AsyncClient) -> None:
    ident = uuid.uuid4().int % 2_000_000_000
    await service.table("rest_items").insert({"id": ident, "name": "once"}).execute()
    with pytest.raises(APIError) as duplicate:
        await service.table("rest_items").insert({"id": ident, "name": "twice"}).execute()
    assert duplicate.value.code == "23505"
    assert duplicate.value.details == f"Key (id)=({ident}) already exists."
    with pytest.raises(APIError) as unknown:
        await service.table("rest_no_such_table").select("*").execute()
    assert unknown.value.code in ("42P01", "PGRST205")  # PostgREST v12 / v13+
    with pytest.raises(APIError) as raised:
        await service.rpc("rest_fail", {"msg": "boom"}).execute()
    assert (raised.value.code, raised.value.message, raised.value.hint) == ("P0001", "boom", "it failed on purpose")


async def test_bad_or_expired_jwt_and_wrong_api_key_are_refused(stack: Stack, connect: ClientFactory) -> None:
    forged = stack.sign({"role": "service_role", "exp": 4_000_000_000}).rsplit(".", 1)[0] + ".bad-signature"
    bad = await connect(stack.anon_key, forged)
    with pytest.raises(APIError) as invalid:
        await bad.table("rest_todos").select("id").limit(1).execute()
    assert invalid.value.code == "PGRST301"
    expired = await connect(stack.anon_key, stack.user_token(lifetime=-120))
    with pytest.raises(APIError) as old:
        await expired.table("rest_todos").select("id").limit(1).execute()
    assert old.value.code in ("PGRST301", "PGRST303")  # v12 / v13+
    assert old.value.message == "JWT expired"
    wrong_key = await connect(stack.sign({"role": "anon", "exp": 4_000_000_000}), None)
    with pytest.raises(APIError) as refused:
        await wrong_key.table("rest_todos").select("id").limit(1).execute()
    # Kong's wording locally and on self-hosted Supabase; the hosted platform says "Invalid API key".
    assert refused.value.message in ("Invalid authentication credentials", "Invalid API key")
