"""Sessions over time on /auth/v1: refresh-token rotation and reuse, logout scopes, password changes.

Conformance tests (they also run against a real Supabase: see docs/auth.md).
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from tests.conftest import Stack
from tests.support.gotrue import GoTrue, UserFactory, auth_fingerprint, claims_of, error_of


async def test_refresh_rotates_and_a_lost_answer_is_given_again(
    stack: Stack, gotrue: GoTrue, make_user: UserFactory, db: asyncpg.Connection
) -> None:
    session = await gotrue.session(await make_user())
    first = session["refresh_token"]
    refreshed = await gotrue.refresh(first)
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()["refresh_token"]
    assert second != first
    session_id = claims_of(stack, session["access_token"])["session_id"]
    assert claims_of(stack, refreshed.json()["access_token"])["session_id"] == session_id
    rows = await db.fetch(
        "select token, revoked, parent from auth.refresh_tokens where session_id = $1 order by id",
        uuid.UUID(session_id),
    )
    assert [(r["token"], r["revoked"], r["parent"]) for r in rows] == [(first, True, None), (second, False, first)]

    # The client never stored the answer and retries with the revoked parent: it gets the same child.
    again = await gotrue.refresh(first)
    assert again.status_code == 200, again.text
    assert again.json()["refresh_token"] == second
    assert (
        await db.fetchval("select count(*) from auth.refresh_tokens where session_id = $1", uuid.UUID(session_id)) == 2
    )


async def test_two_refreshes_of_one_token_at_once_get_the_same_child(
    stack: Stack, gotrue: GoTrue, make_user: UserFactory, db: asyncpg.Connection
) -> None:
    session = await gotrue.session(await make_user())
    both = await asyncio.gather(gotrue.refresh(session["refresh_token"]), gotrue.refresh(session["refresh_token"]))
    assert [r.status_code for r in both] == [200, 200], [r.text for r in both]
    assert both[0].json()["refresh_token"] == both[1].json()["refresh_token"], "a browser's two tabs share one chain"
    session_id = uuid.UUID(claims_of(stack, session["access_token"])["session_id"])
    assert await db.fetchval("select count(*) from auth.refresh_tokens where session_id = $1", session_id) == 2


async def test_a_refresh_token_reused_after_the_interval_revokes_the_session_family(
    stack: Stack, gotrue: GoTrue, make_user: UserFactory, db: asyncpg.Connection
) -> None:
    session = await gotrue.session(await make_user())
    t0 = session["refresh_token"]
    t1 = (await gotrue.refresh(t0)).json()["refresh_token"]
    t2 = (await gotrue.refresh(t1)).json()["refresh_token"]
    session_id = uuid.UUID(claims_of(stack, session["access_token"])["session_id"])
    # Move t0's revocation out of the reuse interval (10 s by default) instead of waiting for it.
    await db.execute("update auth.refresh_tokens set updated_at = now() - interval '1 hour' where token = $1", t0)

    reused = await gotrue.refresh(t0)
    assert error_of(reused) == (400, "refresh_token_already_used", "Invalid Refresh Token: Already Used")
    revoked = await db.fetch("select token, revoked from auth.refresh_tokens where session_id = $1", session_id)
    assert {r["token"]: r["revoked"] for r in revoked} == {t0: True, t1: True, t2: True}


async def test_password_change_ends_the_other_sessions(
    gotrue: GoTrue, make_user: UserFactory, db: asyncpg.Connection
) -> None:
    user = await make_user()
    mine, other = await gotrue.session(user), await gotrue.session(user)
    url = f"{gotrue.base}/user"
    new_password = f"new-{uuid.uuid4().hex}"
    changed = await gotrue.http.put(
        url, json={"password": new_password, "data": {"lang": "ru"}}, headers=gotrue.headers(mine["access_token"])
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["user_metadata"]["lang"] == "ru"

    assert error_of(await gotrue.refresh(other["refresh_token"]))[1] == "refresh_token_not_found"
    assert (await gotrue.refresh(mine["refresh_token"])).status_code == 200
    assert error_of(await gotrue.sign_in(user.email, user.password))[1] == "invalid_credentials"
    assert (await gotrue.sign_in(user.email, new_password)).status_code == 200

    before = await auth_fingerprint(db)
    weak = await gotrue.http.put(url, json={"password": "abc"}, headers=gotrue.headers(mine["access_token"]))
    same = await gotrue.http.put(url, json={"password": new_password}, headers=gotrue.headers(mine["access_token"]))
    assert await auth_fingerprint(db) == before
    assert error_of(weak)[:2] == (422, "weak_password") and "length" in weak.json()["weak_password"]["reasons"]
    assert error_of(same) == (422, "same_password", "New password should be different from the old password.")


async def test_logout_scopes(gotrue: GoTrue, make_user: UserFactory) -> None:
    user = await make_user()
    a, b, c = [await gotrue.session(user) for _ in range(3)]
    url = f"{gotrue.base}/logout"

    bad = await gotrue.http.post(url, params={"scope": "everyone"}, headers=gotrue.headers(a["access_token"]))
    assert error_of(bad) == (400, "validation_failed", 'Unsupported logout scope "everyone"')
    others = await gotrue.http.post(url, params={"scope": "others"}, headers=gotrue.headers(a["access_token"]))
    assert (others.status_code, others.content) == (204, b"")
    assert [(await gotrue.refresh(s["refresh_token"])).status_code for s in (b, c)] == [400, 400]
    a = (await gotrue.refresh(a["refresh_token"])).json()
    local = await gotrue.http.post(url, params={"scope": "local"}, headers=gotrue.headers(a["access_token"]))
    assert local.status_code == 204
    gone = await gotrue.http.get(f"{gotrue.base}/user", headers=gotrue.headers(a["access_token"]))
    assert error_of(gone) == (403, "session_not_found", "Session from session_id claim in JWT does not exist")

    d, e = await gotrue.session(user), await gotrue.session(user)
    everywhere = await gotrue.http.post(url, headers=gotrue.headers(d["access_token"]))
    assert everywhere.status_code == 204
    assert [error_of(await gotrue.refresh(s["refresh_token"]))[1] for s in (d, e)] == ["refresh_token_not_found"] * 2
