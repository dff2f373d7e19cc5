"""The signed-in user's own endpoints: ``GET``/``PUT /user`` and ``POST /logout``
(supabase/auth internal/api/user.go, logout.go)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from . import passwords, sessions, users
from .context import ADMIN_ROLES, AuthContext, request_aud
from .errors import bad_request, forbidden, not_implemented, unprocessable, weak_password
from .guards import Caller, require_user
from .users import Conn
from .validation import validate_email
from .wire import json_params, send_json

LOGOUT_SCOPES = ("global", "local", "others")
UPDATE_FIELDS = {
    "email": "string", "password": "string", "nonce": "string", "data": "map[string]interface {}",
    "app_metadata": "map[string]interface {}", "phone": "string", "channel": "string",
    "code_challenge": "string", "code_challenge_method": "string",
}  # fmt: skip


async def get_user(request: Request, auth: AuthContext) -> Response:
    async with auth.pool.acquire() as conn:
        caller = await require_user(request, auth, conn)
        audience = caller.claims.get("aud")
        first = audience[0] if isinstance(audience, list) and audience else audience
        if first != request_aud(request):
            raise bad_request("validation_failed", "Token audience doesn't match request audience")
        return send_json(200, await users.user_json(conn, caller.user))


async def update_user(request: Request, auth: AuthContext) -> Response:
    async with auth.pool.acquire() as conn:
        caller = await require_user(request, auth, conn)
        params = await json_params(request, "UserUpdateParams", UPDATE_FIELDS)
        user = caller.user
        password: str | None = params.get("password")
        if params.get("email"):
            params["email"] = validate_email(params["email"])
        if params.get("phone"):
            raise not_implemented("changing the phone number (it sends no SMS)")
        if password is not None and len(password) < auth.settings.password_min_length:
            raise weak_password(auth.settings.password_min_length)
        if "app_metadata" in params and user["role"] not in ADMIN_ROLES:
            raise forbidden("not_admin", "Updating app_metadata requires admin privileges")
        if params.get("email") and params["email"] != (user["email"] or ""):
            if await users.email_taken(conn, params["email"], user["aud"], user["id"]):
                raise unprocessable("email_exists", "A user with this email address has already been registered")
            raise not_implemented("changing the email address (it sends no email)")
        hashed = await _new_password_hash(password, user) if password is not None else None
        async with conn.transaction():
            await _apply(conn, caller, hashed, params)
        updated = await users.find_by_id(conn, user["id"])
        assert updated is not None
        return send_json(200, await users.user_json(conn, updated))


async def _new_password_hash(password: str, user: dict[str, Any]) -> str:
    if (
        password
        and user["encrypted_password"]
        and await passwords.password_matches(password, user["encrypted_password"])
    ):
        raise unprocessable("same_password", "New password should be different from the old password.")
    return await passwords.hash_password(password)


async def _apply(conn: Conn, caller: Caller, hashed: str | None, params: dict[str, Any]) -> None:
    user_id = caller.user["id"]
    if hashed is not None:
        await set_password(conn, user_id, hashed, caller.session_id)
    for key, column in (("data", "raw_user_meta_data"), ("app_metadata", "raw_app_meta_data")):
        if key in params:
            current = caller.user["user_metadata" if key == "data" else "app_metadata"]
            await conn.execute(
                f"update auth.users set {column} = $2::jsonb, updated_at = now() where id = $1",
                user_id, json.dumps(merge_metadata(current, params[key])),
            )  # fmt: skip


async def set_password(conn: Conn, user_id: uuid.UUID, hashed: str, keep_session: uuid.UUID | None) -> None:
    """``User.UpdatePassword``: store the hash, void pending one-time tokens, and end every session
    of the user but ``keep_session`` (all of them when it is ``None``)."""
    await conn.execute(
        "update auth.users set encrypted_password = $2, confirmation_token = '', recovery_token = '',"
        " email_change_token_current = '', email_change_token_new = '', phone_change_token = '',"
        " reauthentication_token = '', updated_at = now() where id = $1",
        user_id, hashed,
    )  # fmt: skip
    await sessions.logout(conn, user_id, "others" if keep_session else "global", keep_session)


def merge_metadata(current: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """``UpdateUserMetaData``/``UpdateAppMetaData``: set each key, and a ``null`` removes it."""
    merged = dict(current)
    for key, value in updates.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


async def logout(request: Request, auth: AuthContext) -> Response:
    async with auth.pool.acquire() as conn:
        caller = await require_user(request, auth, conn)
        scope = request.query_params.get("scope", "") or "global"
        if scope not in LOGOUT_SCOPES:
            raise bad_request("validation_failed", f'Unsupported logout scope "{scope}"')
        await sessions.logout(conn, caller.user["id"], scope, caller.session_id)
    return Response(status_code=204)
