"""The Auth admin API with the service_role key, as GoTrue answers it (conformance: also runs on Supabase)."""

from __future__ import annotations

import uuid

import asyncpg

from tests.conftest import Stack
from tests.support.gotrue import GoTrue, UserFactory, auth_fingerprint, error_of


async def test_create_stores_a_user_gotrue_would(
    gotrue: GoTrue, make_user: UserFactory, db: asyncpg.Connection
) -> None:
    email = f"Mixed-{uuid.uuid4().hex[:8]}@Example.com"
    user = await make_user(email=email, user_metadata={"full_name": "Ada L"})
    row = await db.fetchrow(
        "select email, aud, role, email_confirmed_at is not null as confirmed,"
        " confirmed_at = email_confirmed_at as same, instance_id::text from auth.users where id = $1",
        uuid.UUID(user.id),
    )
    assert row is not None
    assert (row["email"], row["aud"], row["role"], row["confirmed"], row["same"]) == (
        email.lower(), "authenticated", "authenticated", True, True,
    )  # fmt: skip
    assert row["instance_id"] == "00000000-0000-0000-0000-000000000000"
    identity = await db.fetchrow(
        "select provider, provider_id, email, identity_data->>'sub' as sub from auth.identities where user_id = $1",
        uuid.UUID(user.id),
    )
    assert identity is not None
    assert tuple(identity) == ("email", user.id, email.lower(), user.id)

    before = await auth_fingerprint(db)
    duplicate = await gotrue.create_user(email=email.upper(), password="long enough")
    nothing = await gotrue.create_user(password="long enough")
    invalid = await gotrue.create_user(email="not-an-address", password="long enough")
    weak = await gotrue.create_user(email=f"weak-{uuid.uuid4().hex[:8]}@example.com", password="abc")
    assert await auth_fingerprint(db) == before
    assert error_of(duplicate) == (422, "email_exists", "A user with this email address has already been registered")
    assert error_of(nothing) == (400, "validation_failed", "Cannot create a user without either an email or phone")
    assert error_of(invalid)[:2] == (400, "validation_failed")
    assert error_of(weak)[:2] == (422, "weak_password")


async def test_an_unconfirmed_user_cannot_sign_in(gotrue: GoTrue, make_user: UserFactory) -> None:
    user = await make_user(confirm=False)
    refused = await gotrue.sign_in(user.email, user.password)
    assert error_of(refused) == (400, "email_not_confirmed", "Email not confirmed")


async def test_get_update_and_delete(gotrue: GoTrue, make_user: UserFactory, db: asyncpg.Connection) -> None:
    user = await make_user(user_metadata={"a": 1, "b": 2})
    url = f"{gotrue.base}/admin/users/{user.id}"
    got = await gotrue.http.get(url, headers=gotrue.admin_headers())
    assert got.status_code == 200 and got.json()["email"] == user.email

    session = await gotrue.session(user)
    updated = await gotrue.http.put(
        url, json={"user_metadata": {"a": None, "c": 3}, "app_metadata": {"roles": ["agent"]}},
        headers=gotrue.admin_headers(),
    )  # fmt: skip
    assert updated.status_code == 200, updated.text
    metadata = updated.json()["user_metadata"]
    assert (metadata["b"], metadata["c"], "a" in metadata) == (2, 3, False), "null removes a key, others merge"
    assert updated.json()["app_metadata"]["roles"] == ["agent"]
    assert updated.json()["app_metadata"]["provider"] == "email"

    banned = await gotrue.http.put(url, json={"ban_duration": "24h"}, headers=gotrue.admin_headers())
    assert banned.status_code == 200 and "banned_until" in banned.json()
    assert error_of(await gotrue.sign_in(user.email, user.password)) == (400, "user_banned", "User is banned")
    assert error_of(await gotrue.refresh(session["refresh_token"]))[:2] == (400, "user_banned")
    lifted = await gotrue.http.put(url, json={"ban_duration": "none"}, headers=gotrue.admin_headers())
    assert "banned_until" not in lifted.json()

    new_password = f"admin-set-{uuid.uuid4().hex}"
    reset = await gotrue.http.put(url, json={"password": new_password}, headers=gotrue.admin_headers())
    assert reset.status_code == 200
    assert error_of(await gotrue.refresh(session["refresh_token"]))[1] == "refresh_token_not_found"
    assert (await gotrue.sign_in(user.email, new_password)).status_code == 200

    deleted = await gotrue.http.delete(url, headers=gotrue.admin_headers())
    assert (deleted.status_code, deleted.json()) == (200, {})
    for table in ("users", "identities", "sessions"):
        column = "id" if table == "users" else "user_id"
        assert await db.fetchval(f"select count(*) from auth.{table} where {column} = $1", uuid.UUID(user.id)) == 0
    assert error_of(await gotrue.http.get(url, headers=gotrue.admin_headers())) == (
        404,
        "user_not_found",
        "User not found",
    )
    malformed = await gotrue.http.get(f"{gotrue.base}/admin/users/not-a-uuid", headers=gotrue.admin_headers())
    assert error_of(malformed) == (404, "validation_failed", "user_id must be an UUID")


async def test_list_pages_newest_first(gotrue: GoTrue, make_user: UserFactory) -> None:
    mark = uuid.uuid4().hex[:10]
    made = [await make_user(email=f"list-{mark}-{n}@example.com") for n in range(3)]
    url = f"{gotrue.base}/admin/users"
    first = await gotrue.http.get(url, params={"filter": mark, "per_page": "2"}, headers=gotrue.admin_headers())
    assert first.status_code == 200, first.text
    assert first.headers["x-total-count"] == "3"
    assert [u["email"] for u in first.json()["users"]] == [made[2].email, made[1].email]
    assert first.json()["aud"] == "authenticated"
    link = first.headers["link"]
    assert 'page=2&per_page=2>; rel="next"' in link and 'page=2&per_page=2>; rel="last"' in link
    second = await gotrue.http.get(
        url, params={"filter": mark, "per_page": "2", "page": "2"}, headers=gotrue.admin_headers()
    )
    assert [u["email"] for u in second.json()["users"]] == [made[0].email]
    assert 'rel="next"' not in second.headers["link"]
    bad = await gotrue.http.get(url, params={"per_page": "0"}, headers=gotrue.admin_headers())
    assert error_of(bad)[:2] == (400, "validation_failed")


async def test_only_admin_tokens_reach_the_admin_api(stack: Stack, gotrue: GoTrue, make_user: UserFactory) -> None:
    user = await make_user()
    token = (await gotrue.session(user))["access_token"]
    url = f"{gotrue.base}/admin/users"
    for bearer in (stack.anon_key, token):
        refused = await gotrue.http.get(url, headers=gotrue.headers(bearer))
        assert error_of(refused) == (403, "not_admin", "User not allowed")
    nothing = await gotrue.http.get(url, headers=gotrue.headers())
    assert error_of(nothing) == (401, "no_authorization", "This endpoint requires a Bearer token")
    app_data = await gotrue.http.put(
        f"{gotrue.base}/user", json={"app_metadata": {"role": "admin"}}, headers=gotrue.headers(token)
    )
    assert error_of(app_data) == (403, "not_admin", "Updating app_metadata requires admin privileges")
