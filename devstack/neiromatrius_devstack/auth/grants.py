"""``POST /token``: the password and refresh_token grants (supabase/auth internal/api/token.go,
token_refresh.go). Every error leaves the database as it was, except a refresh token reused after
its reuse interval, which revokes its whole session's tokens first, as GoTrue does.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from . import sessions, tokens, users
from .context import AuthContext, request_aud
from .errors import INVALID_CREDENTIALS, AuthError, OAuthError, bad_request, rate_limited, weak_password
from .passwords import password_matches
from .users import Conn
from .wire import client_address, json_params, send_json


async def token(request: Request, auth: AuthContext) -> Response:
    grant_type = request.query_params.get("grant_type", "")
    if grant_type == "password":
        return await password_grant(request, auth)
    if grant_type == "refresh_token":
        return await refresh_grant(request, auth)
    raise bad_request("invalid_credentials", "unsupported_grant_type")


def client_of(request: Request) -> sessions.Client:
    return sessions.Client(request.headers.get("user-agent") or None, client_address(request) or None)


async def password_grant(request: Request, auth: AuthContext) -> Response:
    fields = {"email": "string", "phone": "string", "password": "string"}
    params = await json_params(request, "PasswordGrantParams", fields)
    email, phone, password = params.get("email", ""), params.get("phone", ""), params.get("password", "")
    if email and phone:
        raise bad_request("validation_failed", "Only an email address or phone number should be provided on login.")
    if phone:
        raise AuthError(422, "phone_provider_disabled", "Phone logins are disabled")
    if not email:
        raise bad_request("validation_failed", "missing email or phone")
    address = client_address(request)
    if auth.limiter.refused(email, address):
        raise rate_limited()
    async with auth.pool.acquire() as conn:
        user = await users.find_by_email(conn, email, request_aud(request))
        matches = await password_matches(password, user["encrypted_password"] if user else None)
        if user is not None and matches and users.is_banned(user, datetime.now(UTC)):
            raise bad_request("user_banned", "User is banned")
        if user is None or not matches:
            auth.limiter.failed(email, address)
            raise bad_request("invalid_credentials", INVALID_CREDENTIALS)
        if user["email_confirmed_at"] is None:
            raise bad_request("email_not_confirmed", "Email not confirmed")
        async with conn.transaction():
            session_id, refresh = await sessions.grant(conn, user["id"], client_of(request), "password")
        body = await _session_body(conn, auth, user["id"], session_id, refresh)
    if len(password) < auth.settings.password_min_length:
        body["weak_password"] = weak_password(auth.settings.password_min_length).extra["weak_password"]
    return send_json(200, body)


async def _session_body(
    conn: Conn, auth: AuthContext, user_id: uuid.UUID, session_id: uuid.UUID, refresh: str
) -> dict[str, Any]:
    """``AccessTokenResponse``: access token, its lifetime, the refresh token and the user."""
    user = await users.find_by_id(conn, user_id)
    assert user is not None  # the caller holds its row in this request
    amr = await sessions.amr(conn, session_id)
    lifetime = auth.settings.jwt_exp
    access, expires_at = tokens.access_token(auth.secret, auth.issuer, user, str(session_id), amr, lifetime)
    return {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": lifetime,
        "expires_at": expires_at,
        "refresh_token": refresh,
        "user": await users.user_json(conn, user),
    }


async def refresh_grant(request: Request, auth: AuthContext) -> Response:
    params = await json_params(request, "RefreshTokenGrantParams", {"refresh_token": "string"})
    presented = params.get("refresh_token", "")
    if not presented:
        raise OAuthError("invalid_request", "refresh_token required")
    async with auth.pool.acquire() as conn:
        found = await sessions.find_token(conn, presented)
        if found is None:
            raise bad_request("refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
        user = await users.find_by_id(conn, uuid.UUID(found["user_id"]))
        if user is None:
            raise bad_request("refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
        if users.is_banned(user, datetime.now(UTC)):
            raise bad_request("user_banned", "Invalid Refresh Token: User Banned")
        if not found["has_session"]:
            # A token from before sessions existed: GoTrue deletes it and refuses.
            await conn.execute("delete from auth.refresh_tokens where id = $1", found["id"])
            raise bad_request("session_not_found", "Invalid Refresh Token: No Valid Session Found")
        if found["not_after"] is not None and datetime.now(UTC) > found["not_after"]:
            raise bad_request("session_expired", "Invalid Refresh Token: Session Expired")
        refresh = await _rotate(conn, auth, presented, client_of(request))
        if refresh is None:  # the family's revocation is committed; now refuse (storage.NewCommitWithError)
            raise bad_request("refresh_token_already_used", "Invalid Refresh Token: Already Used")
        body = await _session_body(conn, auth, user["id"], found["session_id"], refresh)
    return send_json(200, body)


async def _rotate(conn: Conn, auth: AuthContext, presented: str, client: sessions.Client) -> str | None:
    """The refresh token to hand out, or ``None`` for a reuse outside the interval (family revoked).

    The row lock serializes two refreshes of one token, as GoTrue's ``SELECT ... FOR UPDATE`` does.
    """
    async with conn.transaction():
        locked = await sessions.find_token(conn, presented, for_update=True)
        if locked is None:
            raise bad_request("refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
        session_id = locked["session_id"]
        issued: str | None = None
        if locked["revoked"]:
            active = await sessions.active_token(conn, session_id)
            if active is not None and active["parent"] == locked["token"]:
                # The client lost the answer to its last refresh: it gets the current token again.
                issued = active["token"]
            else:
                reuse_until = locked["updated_at"] + timedelta(seconds=auth.settings.refresh_token_reuse_interval)
                if datetime.now(UTC) > reuse_until:
                    await sessions.revoke_family(conn, session_id)
                    return None
        if issued is None:
            issued = await sessions.swap(conn, locked)
        await sessions.touch(conn, session_id, client)
        return issued
