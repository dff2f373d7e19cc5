"""/auth/v1 on the wire, as GoTrue answers: sign-in, claims, errors and what they leave behind.

Conformance tests: they also run against a real Supabase (SUPABASE_URL and keys set, see
docs/auth.md), which must use the legacy HS256 JWT secret and have sign-ups disabled.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import asyncpg
import jwt

from tests.conftest import Stack
from tests.support.gotrue import GoTrue, UserFactory, auth_fingerprint, claims_of, error_of


async def test_password_sign_in_answers_a_session_and_stores_it(
    stack: Stack, gotrue: GoTrue, make_user: UserFactory, db: asyncpg.Connection
) -> None:
    user = await make_user(user_metadata={"name": "Ada"})
    session = await gotrue.session(user)
    assert session["token_type"] == "bearer"
    assert isinstance(session["expires_in"], int) and session["expires_in"] > 0
    assert isinstance(session["refresh_token"], str) and session["refresh_token"]
    assert session["user"]["id"] == user.id and session["user"]["email"] == user.email
    assert session["user"]["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert [i["provider"] for i in session["user"]["identities"]] == ["email"]

    claims = claims_of(stack, session["access_token"])
    assert claims["iss"] == f"{stack.url}/auth/v1"
    assert (claims["sub"], claims["aud"], claims["role"]) == (user.id, "authenticated", "authenticated")
    assert (claims["email"], claims["phone"], claims["is_anonymous"], claims["aal"]) == (user.email, "", False, "aal1")
    assert claims["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert claims["user_metadata"]["name"] == "Ada"
    assert [entry["method"] for entry in claims["amr"]] == ["password"]
    assert abs(claims["amr"][0]["timestamp"] - claims["iat"]) <= 5
    assert claims["exp"] - claims["iat"] == session["expires_in"]
    assert session["expires_at"] == claims["exp"]

    row = await db.fetchrow(
        "select s.user_id, s.aal::text, t.revoked, t.parent, u.last_sign_in_at is not null as signed_in,"
        " u.encrypted_password from auth.sessions s join auth.refresh_tokens t on t.session_id = s.id"
        " join auth.users u on u.id = s.user_id where s.id = $1",
        uuid.UUID(claims["session_id"]),
    )
    assert row is not None
    assert (str(row["user_id"]), row["aal"], row["revoked"], row["parent"], row["signed_in"]) == (
        user.id, "aal1", False, None, True,
    )  # fmt: skip
    assert row["encrypted_password"].startswith("$2a$10$"), "GoTrue stores bcrypt hashes, cost 10"


async def test_the_api_version_header_selects_the_2024_error_shape(gotrue: GoTrue, make_user: UserFactory) -> None:
    user = await make_user()
    old = await gotrue.sign_in(user.email, "wrong password")
    new = await gotrue.sign_in(user.email, "wrong password", **{"X-Supabase-Api-Version": "2024-01-01"})
    assert old.json() == {"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"}
    assert new.status_code == 400
    assert new.headers["x-supabase-api-version"] == "2024-01-01"
    assert new.json() == {"code": "invalid_credentials", "message": "Invalid login credentials"}


async def test_wrong_password_and_unknown_email_get_the_same_answer_and_write_nothing(
    gotrue: GoTrue, make_user: UserFactory, db: asyncpg.Connection
) -> None:
    user = await make_user()
    before = await auth_fingerprint(db)
    wrong = await gotrue.sign_in(user.email, "not the password")
    unknown = await gotrue.sign_in(f"nobody-{uuid.uuid4().hex[:8]}@example.com", "not the password")
    assert await auth_fingerprint(db) == before
    assert error_of(wrong) == (400, "invalid_credentials", "Invalid login credentials")
    assert (unknown.status_code, unknown.content) == (wrong.status_code, wrong.content)
    assert unknown.headers.get("content-type") == wrong.headers.get("content-type")


async def test_bad_token_requests_are_refused_with_gotrue_codes(gotrue: GoTrue, db: asyncpg.Connection) -> None:
    url = f"{gotrue.base}/token"
    before = await auth_fingerprint(db)
    malformed = await gotrue.http.post(
        url, params={"grant_type": "password"}, content=b"{bad", headers=gotrue.headers()
    )
    no_grant = await gotrue.http.post(url, json={"email": "a@example.com", "password": "x"}, headers=gotrue.headers())
    no_login = await gotrue.http.post(url, params={"grant_type": "password"}, json={}, headers=gotrue.headers())
    no_refresh = await gotrue.http.post(url, params={"grant_type": "refresh_token"}, json={}, headers=gotrue.headers())
    unknown_refresh = await gotrue.refresh("nosuchtoken1")
    assert await auth_fingerprint(db) == before
    assert error_of(malformed)[:2] == (400, "bad_json")
    assert error_of(no_grant) == (400, "invalid_credentials", "unsupported_grant_type")
    assert error_of(no_login) == (400, "validation_failed", "missing email or phone")
    assert no_refresh.status_code == 400
    assert no_refresh.json() == {"error": "invalid_request", "error_description": "refresh_token required"}
    assert error_of(unknown_refresh) == (
        400,
        "refresh_token_not_found",
        "Invalid Refresh Token: Refresh Token Not Found",
    )


async def test_user_endpoint_checks_the_token(
    stack: Stack, gotrue: GoTrue, make_user: UserFactory, db: asyncpg.Connection
) -> None:
    user = await make_user()
    session = await gotrue.session(user)
    claims = claims_of(stack, session["access_token"])
    url = f"{gotrue.base}/user"

    ok = await gotrue.http.get(url, headers=gotrue.headers(session["access_token"]))
    assert ok.status_code == 200 and ok.json()["id"] == user.id

    expired = stack.sign({**claims, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600})
    head, _payload, signature = session["access_token"].split(".")
    other = base64.urlsafe_b64encode(json.dumps({**claims, "sub": str(uuid.uuid4())}).encode()).rstrip(b"=").decode()
    tampered = ".".join([head, other, signature])
    unsigned = jwt.encode(claims, None, algorithm="none")
    before = await auth_fingerprint(db)
    for token in (expired, tampered, unsigned):
        for method, path, body in (
            ("GET", "/user", None),
            ("PUT", "/user", {"password": "x" * 12}),
            ("POST", "/logout", None),
        ):
            response = await gotrue.http.request(
                method, f"{gotrue.base}{path}", json=body, headers=gotrue.headers(token)
            )
            status, code, message = error_of(response)
            assert (status, code) == (403, "bad_jwt"), response.text
            assert message.startswith("invalid JWT: unable to parse or verify signature, ")
    assert await auth_fingerprint(db) == before, "no password change, no sign-out with a bad token"
    missing = await gotrue.http.get(url, headers=gotrue.headers())
    assert error_of(missing) == (401, "no_authorization", "This endpoint requires a Bearer token")
    anon = await gotrue.http.get(url, headers=gotrue.headers(stack.anon_key))
    assert error_of(anon) == (403, "bad_jwt", "invalid claim: missing sub claim")


async def test_signup_is_disabled_and_settings_say_so(gotrue: GoTrue, db: asyncpg.Connection) -> None:
    settings = await gotrue.http.get(f"{gotrue.base}/settings", headers=gotrue.headers())
    assert settings.status_code == 200
    assert settings.json()["disable_signup"] is True
    assert settings.json()["external"]["email"] is True
    health = await gotrue.http.get(f"{gotrue.base}/health", headers=gotrue.headers())
    assert health.status_code == 200 and health.json()["name"] == "GoTrue"

    before = await auth_fingerprint(db)
    email = f"self-{uuid.uuid4().hex[:8]}@example.com"
    signup = await gotrue.http.post(
        f"{gotrue.base}/signup", json={"email": email, "password": "long enough"}, headers=gotrue.headers()
    )
    assert error_of(signup) == (422, "signup_disabled", "Signups not allowed for this instance")
    assert await auth_fingerprint(db) == before


async def test_gateway_key_rules_cover_auth(stack: Stack, gotrue: GoTrue) -> None:
    no_key = await gotrue.http.get(f"{gotrue.base}/settings")
    assert no_key.status_code == 401
    assert no_key.json() == {"message": "No API key found in request"}
    bad_key = await gotrue.http.get(f"{gotrue.base}/settings", headers={"apikey": "nope"})
    assert bad_key.status_code == 401
    assert bad_key.json() == {"message": "Invalid authentication credentials"}


async def test_a_session_token_reads_rows_under_rls(stack: Stack, gotrue: GoTrue, make_user: UserFactory) -> None:
    alice, bob = await make_user(), await make_user()
    alice_token = (await gotrue.session(alice))["access_token"]
    bob_token = (await gotrue.session(bob))["access_token"]
    rest = f"{stack.url}/rest/v1/auth_notes"
    mark = uuid.uuid4().hex
    written = await gotrue.http.post(
        rest, json={"body": mark}, headers={**gotrue.headers(alice_token), "Prefer": "return=representation"}
    )
    assert written.status_code == 201, written.text
    assert written.json()[0]["owner"] == alice.id, "the owner default is auth.uid() from the session token"
    mine = await gotrue.http.get(
        rest, params={"body": f"eq.{mark}", "select": "owner"}, headers=gotrue.headers(alice_token)
    )
    theirs = await gotrue.http.get(
        rest, params={"body": f"eq.{mark}", "select": "owner"}, headers=gotrue.headers(bob_token)
    )
    assert mine.json() == [{"owner": alice.id}]
    assert theirs.json() == []
