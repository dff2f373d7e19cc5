"""The REST API on the wire: exact status codes, headers and bodies, as PostgREST sends them.

Messages that changed between PostgREST v12 and v13+ are not asserted; codes and statuses are.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import Stack

JSON = "application/json; charset=utf-8"


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The service role's view of ``/rest/v1``."""
    headers = {"apikey": stack.service_key, "Authorization": f"Bearer {stack.service_key}"}
    async with httpx.AsyncClient(base_url=f"{stack.url}/rest/v1", headers=headers, timeout=30) as client:
        yield client


def as_anon(stack: Stack) -> dict[str, str]:
    return {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.anon_key}"}


async def _todos(api: httpx.AsyncClient, count: int) -> str:
    mark = f"w-{uuid.uuid4()}"
    rows = [{"title": f"t{i}", "batch": mark, "priority": i} for i in range(count)]
    response = await api.post("/rest_todos", json=rows, headers={"Prefer": "return=minimal"})
    assert response.status_code == 201
    return mark


async def test_reads_report_their_range(api: httpx.AsyncClient) -> None:
    mark = await _todos(api, 5)
    page = await api.get("/rest_todos", params={"batch": f"eq.{mark}", "select": "title", "order": "priority"})
    assert page.status_code == 200
    assert page.headers["content-range"] == "0-4/*"
    assert page.headers["content-type"] == JSON
    assert page.json()[0] == {"title": "t0"}

    counted = await api.get(
        "/rest_todos",
        params={"batch": f"eq.{mark}", "select": "title", "order": "priority"},
        headers={"Range": "1-2", "Prefer": "count=exact"},
    )
    assert counted.status_code == 206
    assert counted.headers["content-range"] == "1-2/5"
    assert counted.headers["preference-applied"] == "count=exact"
    assert counted.json() == [{"title": "t1"}, {"title": "t2"}]

    everything = await api.get("/rest_todos", params={"batch": f"eq.{mark}"}, headers={"Prefer": "count=exact"})
    assert (everything.status_code, everything.headers["content-range"]) == (200, "0-4/5")

    empty = await api.get("/rest_todos", params={"batch": "eq.none-such"}, headers={"Prefer": "count=exact"})
    assert (empty.status_code, empty.headers["content-range"], empty.json()) == (200, "*/0", [])

    beyond = await api.get(
        "/rest_todos", params={"batch": f"eq.{mark}", "offset": "7", "limit": "2"}, headers={"Prefer": "count=exact"}
    )
    assert beyond.status_code == 416
    assert beyond.json()["code"] == "PGRST103"


async def test_head_answers_like_get_without_a_body(api: httpx.AsyncClient) -> None:
    mark = await _todos(api, 3)
    response = await api.head("/rest_todos", params={"batch": f"eq.{mark}"}, headers={"Prefer": "count=exact"})
    assert response.status_code == 200
    assert response.headers["content-range"] == "0-2/3"
    assert response.content == b""


async def test_insert_answers_per_return_preference(api: httpx.AsyncClient) -> None:
    minimal = await api.post("/rest_todos", json={"title": "m"}, headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert minimal.headers["content-range"] == "*/*"
    assert "content-type" not in minimal.headers

    full = await api.post(
        "/rest_todos", json=[{"title": "r1"}, {"title": "r2"}], headers={"Prefer": "return=representation,count=exact"}
    )
    assert full.status_code == 201
    assert full.headers["content-range"] == "*/2"
    assert full.headers["preference-applied"] == "return=representation, count=exact"
    assert [row["title"] for row in full.json()] == ["r1", "r2"]

    located = await api.post("/rest_todos", json={"title": "h"}, headers={"Prefer": "return=headers-only"})
    assert located.status_code == 201
    assert located.headers["location"].startswith("/rest_todos?id=eq.")


async def test_upsert_status_and_preference_applied(api: httpx.AsyncClient) -> None:
    ident = uuid.uuid4().int % 2_000_000_000
    prefer = {"Prefer": "return=representation,resolution=merge-duplicates"}
    created = await api.post("/rest_items", json={"id": ident, "name": "a"}, headers=prefer)
    assert created.status_code == 201
    assert created.headers["preference-applied"] == "resolution=merge-duplicates, return=representation"
    merged = await api.post("/rest_items", json={"id": ident, "name": "b"}, headers=prefer)
    assert merged.status_code == 200  # nothing new was inserted
    assert merged.json() == [{"id": ident, "name": "b", "qty": 7, "note": None}]


async def test_update_and_delete_statuses(api: httpx.AsyncClient) -> None:
    mark = await _todos(api, 2)
    quiet = await api.patch("/rest_todos", params={"batch": f"eq.{mark}"}, json={"done": True})
    assert quiet.status_code == 204
    assert quiet.headers["content-range"] == "0-1/*"
    loud = await api.patch(
        "/rest_todos",
        params={"batch": f"eq.{mark}", "priority": "eq.1", "select": "title,done"},
        json={"title": "renamed"},
        headers={"Prefer": "return=representation"},
    )
    assert (loud.status_code, loud.headers["content-range"]) == (200, "0-0/*")
    assert loud.json() == [{"title": "renamed", "done": True}]
    nothing = await api.patch("/rest_todos", params={"batch": "eq.none-such"}, json={"done": True})
    assert (nothing.status_code, nothing.headers["content-range"]) == (204, "*/*")
    deleted = await api.delete("/rest_todos", params={"batch": f"eq.{mark}"})
    assert deleted.status_code == 204
    gone = await api.get("/rest_todos", params={"batch": f"eq.{mark}"})
    assert gone.json() == []


async def test_singular_mismatch_is_406_and_rolls_back(api: httpx.AsyncClient) -> None:
    mark = await _todos(api, 2)
    response = await api.patch(
        "/rest_todos",
        params={"batch": f"eq.{mark}"},
        json={"done": True},
        headers={"Accept": "application/vnd.pgrst.object+json", "Prefer": "return=representation"},
    )
    assert response.status_code == 406
    body = response.json()
    assert (body["code"], body["details"]) == ("PGRST116", "The result contains 2 rows")
    after = await api.get("/rest_todos", params={"batch": f"eq.{mark}", "select": "done"})
    assert after.json() == [{"done": False}, {"done": False}]

    one = await api.get(
        "/rest_todos",
        params={"batch": f"eq.{mark}", "priority": "eq.1", "select": "title"},
        headers={"Accept": "application/vnd.pgrst.object+json"},
    )
    assert one.status_code == 200
    assert one.headers["content-type"] == "application/vnd.pgrst.object+json; charset=utf-8"
    assert one.json() == {"title": "t1"}


async def test_request_errors_have_postgrest_codes(api: httpx.AsyncClient) -> None:
    cases = [
        (await api.get("/rest_todos", params={"id": "val"}), 400, "PGRST100"),
        (await api.get("/rest_todos", params={"id": "gt.abc"}), 400, "22P02"),
        (await api.get("/rest_todos", params={"select": "nope"}), 400, "42703"),
        (await api.get("/rest_todos", params={"select": "*,rest_nothing(*)"}), 400, "PGRST200"),
        (await api.post("/rest_todos", json=[{"title": "a"}, {"priority": 1}]), 400, "PGRST102"),
        (await api.post("/rest_todos", content=b"{not json"), 400, "PGRST102"),
        (await api.post("/rest_todos", json={"nope": 1}), 400, "PGRST204"),
        (await api.post("/rpc/rest_no_such_function", json={}), 404, "PGRST202"),
        (await api.put("/rpc/rest_add", json={"a": 1, "b": 2}), 405, "PGRST101"),
        (await api.get("/rest_todos", headers={"Accept-Profile": "private"}), 406, "PGRST106"),
        (await api.post("/rpc/rest_teapot", json={}), 418, "PT418"),
    ]
    for response, status, code in cases:
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
        assert response.headers["content-type"] == JSON
        assert set(response.json()) == {"code", "details", "hint", "message"}


async def test_duplicate_key_body(api: httpx.AsyncClient) -> None:
    ident = uuid.uuid4().int % 2_000_000_000
    await api.post("/rest_items", json={"id": ident, "name": "a"})
    response = await api.post("/rest_items", json={"id": ident, "name": "b"})
    assert response.status_code == 409
    assert response.json() == {
        "code": "23505",
        "details": f"Key (id)=({ident}) already exists.",
        "hint": None,
        "message": 'duplicate key value violates unique constraint "rest_items_pkey"',
    }


async def test_anon_write_denied_by_rls_is_401_with_challenge(stack: Stack, api: httpx.AsyncClient) -> None:
    response = await api.post("/rest_notes", json={"owner": str(uuid.uuid4()), "body": "x"}, headers=as_anon(stack))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == "42501"
    user = {"Authorization": f"Bearer {stack.user_token()}"}
    forged = await api.post("/rest_notes", json={"owner": str(uuid.uuid4()), "body": "x"}, headers=user)
    assert (forged.status_code, forged.json()["code"]) == (403, "42501")


async def test_jwt_failures_are_401(stack: Stack, api: httpx.AsyncClient) -> None:
    expired = await api.get("/rest_todos", headers={"Authorization": f"Bearer {stack.user_token(lifetime=-120)}"})
    assert expired.status_code == 401
    assert expired.json()["message"] == "JWT expired"
    assert expired.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    garbage = await api.get("/rest_todos", headers={"Authorization": "Bearer not-a-jwt"})
    assert (garbage.status_code, garbage.json()["code"]) == (401, "PGRST301")


async def test_wrong_api_key_is_refused_before_the_api(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=f"{stack.url}/rest/v1", timeout=30) as client:
        missing = await client.get("/rest_todos")
        wrong = await client.get("/rest_todos", headers={"apikey": stack.sign({"role": "anon", "exp": 4_000_000_000})})
    assert missing.status_code == 401
    assert wrong.status_code == 401


async def test_rpc_shapes_and_transaction_modes(stack: Stack, api: httpx.AsyncClient) -> None:
    void = await api.post("/rpc/rest_noop", json={})
    assert (void.status_code, void.content) == (204, b"")
    scalar = await api.get("/rpc/rest_add", params={"a": "1", "b": "2"})
    assert (scalar.status_code, scalar.json(), scalar.headers["content-range"]) == (200, 3, "0-0/*")
    rows = await api.get("/rpc/rest_series", params={"n": "5", "limit": "2"}, headers={"Prefer": "count=exact"})
    assert (rows.status_code, rows.json(), rows.headers["content-range"]) == (206, [1, 2], "0-1/5")
    # A GET runs READ ONLY, so a function that writes is refused (25006 → 405).
    refused = await api.get("/rpc/rest_log", params={"body": "via get"})
    assert (refused.status_code, refused.json()["code"]) == (405, "25006")
    written = await api.post("/rpc/rest_log", json={"body": "via post"})
    assert written.status_code == 200 and isinstance(written.json(), int)


async def test_request_context_reaches_sql(stack: Stack, api: httpx.AsyncClient) -> None:
    sub = str(uuid.uuid4())
    headers = {"Authorization": f"Bearer {stack.user_token(sub)}", "X-Client-Info": "wire-test/1"}
    response = await api.post("/rpc/rest_whoami", json={}, headers=headers)
    assert response.json() == {
        "role": "authenticated",
        "sub": sub,
        "method": "POST",
        "path": "/rpc/rest_whoami",
        "client": "wire-test/1",
    }
    anon = await api.get("/rpc/rest_whoami", headers=as_anon(stack))
    assert anon.json()["role"] == "anon"
    assert anon.json()["sub"] is None


async def test_profile_header_is_echoed_and_apikey_param_ignored(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=f"{stack.url}/rest/v1", timeout=30) as client:
        response = await client.get(
            "/rest_todos", params={"apikey": stack.anon_key, "limit": "1"}, headers={"Accept-Profile": "public"}
        )
    assert response.status_code == 200
    assert response.headers["content-profile"] == "public"
    assert isinstance(json.loads(response.content), list)
