"""The admin API on ``/admin/users/{id}`` and user creation, for the service_role key
(supabase/auth internal/api/admin.go). Listing is in admin_list.py."""

from __future__ import annotations

import json
import secrets
import string
import uuid
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from . import passwords, users
from .account import merge_metadata, set_password
from .context import AuthContext, request_aud
from .durations import parse_duration
from .errors import AuthError, bad_request, not_found, not_implemented, unprocessable, weak_password
from .guards import require_admin
from .users import NIL_UUID, Conn
from .validation import validate_email
from .wire import json_params, send_json

MAP = "map[string]interface {}"
ADMIN_FIELDS = {
    "id": "string", "aud": "string", "role": "string", "email": "string", "phone": "string", "password": "string",
    "password_hash": "string", "email_confirm": "bool", "phone_confirm": "bool", "user_metadata": MAP,
    "app_metadata": MAP, "ban_duration": "string",
}  # fmt: skip
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


async def _load(request: Request, auth: AuthContext, conn: Conn) -> dict[str, Any]:
    """``loadUser``: 404 for a malformed id as for an unknown one (with different codes)."""
    try:
        user_id = uuid.UUID(request.path_params["user_id"])
    except ValueError:
        raise not_found("validation_failed", "user_id must be an UUID") from None
    user = await users.find_by_id(conn, user_id)
    if user is None:
        raise not_found("user_not_found", "User not found")
    return user


async def get_user(request: Request, auth: AuthContext) -> Response:
    require_admin(request, auth)
    async with auth.pool.acquire() as conn:
        return send_json(200, await users.user_json(conn, await _load(request, auth, conn)))


async def delete_user(request: Request, auth: AuthContext) -> Response:
    require_admin(request, auth)
    async with auth.pool.acquire() as conn:
        user = await _load(request, auth, conn)
        params = (
            await json_params(request, "adminUserDeleteParams", {"should_soft_delete": "bool"})
            if ((await request.body()).strip())
            else {}
        )
        if params.get("should_soft_delete"):
            raise not_implemented("soft deletion of users")
        await conn.execute("delete from auth.users where id = $1", user["id"])
    return send_json(200, {})


async def create_user(request: Request, auth: AuthContext) -> Response:
    require_admin(request, auth)
    params = await json_params(request, "AdminUserParams", ADMIN_FIELDS)
    aud = params.get("aud") or request_aud(request)
    email, phone = params.get("email", ""), params.get("phone", "")
    if not email and not phone:
        raise bad_request("validation_failed", "Cannot create a user without either an email or phone")
    async with auth.pool.acquire() as conn:
        if email:
            email = validate_email(email)
            if await users.email_taken(conn, email, aud, None):
                raise unprocessable("email_exists", "A user with this email address has already been registered")
        if phone:
            raise not_implemented("phone users (it sends no SMS)")
        hashed = await _password_hash(params, auth.settings.password_min_length)
        user_id = _custom_id(params.get("id", ""))
        ban = _ban(params)
        app_metadata = merge_metadata({"provider": "email", "providers": ["email"]}, params.get("app_metadata", {}))
        user_metadata = dict(params.get("user_metadata", {}))
        if params.get("email_confirm"):
            user_metadata["email_verified"] = True  # User.Confirm records it in user_metadata
        async with conn.transaction():
            await conn.execute(
                "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,"
                " confirmation_token, recovery_token, email_change_token_new, email_change, raw_app_meta_data,"
                " raw_user_meta_data, created_at, updated_at, banned_until, is_sso_user, is_anonymous)"
                " values ($1, $2, $3, $4, $5, $6, case when $7 then now() end, '', '', '', '', $8::jsonb, $9::jsonb,"
                " now(), now(), now() + $10::interval, false, false)",
                NIL_UUID, user_id, aud, params.get("role") or "authenticated", email, hashed,
                bool(params.get("email_confirm")), json.dumps(app_metadata), json.dumps(user_metadata), ban or None,
            )  # fmt: skip
            await _insert_email_identity(conn, user_id, email)
        created = await users.find_by_id(conn, user_id)
        assert created is not None
        return send_json(200, await users.user_json(conn, created))


async def _insert_email_identity(conn: Conn, user_id: uuid.UUID, email: str) -> None:
    data = {"sub": str(user_id), "email": email, "email_verified": False, "phone_verified": False}
    await conn.execute(
        "insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at,"
        " updated_at) values ($1, $2, $3::jsonb, 'email', now(), now(), now())",
        str(user_id), user_id, json.dumps(data),
    )  # fmt: skip


async def _password_hash(params: dict[str, Any], min_length: int) -> str:
    password, given_hash = params.get("password"), params.get("password_hash", "")
    if password is not None and given_hash:
        raise bad_request("validation_failed", "Only a password or a password hash should be provided")
    if password and len(password) < min_length:
        raise weak_password(min_length)
    if given_hash:
        if not given_hash.startswith(BCRYPT_PREFIXES):
            raise bad_request("validation_failed", "Invalid password hash format")
        return str(given_hash)
    if not password:
        # GoTrue gives a user created without a password a random one nobody knows.
        alphabet = string.ascii_letters + string.digits
        password = "".join(secrets.choice(alphabet) for _ in range(64))
    return await passwords.hash_password(password)


def _custom_id(raw: str) -> uuid.UUID:
    if not raw:
        return uuid.uuid4()
    try:
        value = uuid.UUID(raw)
    except ValueError:
        raise bad_request("validation_failed", "ID must conform to the uuid v4 format") from None
    if value == NIL_UUID:
        raise bad_request("validation_failed", "ID cannot be a nil uuid")
    return value


def _ban(params: dict[str, Any]) -> timedelta | None:
    """``ban_duration``: ``None`` leaves the ban as it is; "none" (or 0) lifts it."""
    raw = params.get("ban_duration", "")
    if not raw:
        return None
    if raw == "none":
        return timedelta(0)
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise bad_request("validation_failed", f"invalid format for ban duration: {exc}") from None


async def update_user(request: Request, auth: AuthContext) -> Response:
    require_admin(request, auth)
    async with auth.pool.acquire() as conn:
        user = await _load(request, auth, conn)
        params = await json_params(request, "AdminUserParams", ADMIN_FIELDS)
        email = validate_email(params["email"]) if params.get("email") else ""
        if params.get("phone"):
            raise not_implemented("phone users (it sends no SMS)")
        ban = _ban(params)
        hashed = None
        if "password" in params:
            if len(params["password"]) < auth.settings.password_min_length:
                raise weak_password(auth.settings.password_min_length)
            hashed = await passwords.hash_password(params["password"])
        if email and email != user["email"] and await users.email_taken(conn, email, user["aud"], user["id"]):
            raise unprocessable("email_exists", "A user with this email address has already been registered")
        try:
            async with conn.transaction():
                await _update(conn, user, params, email, hashed, ban)
        except AuthError:
            raise
        except Exception as exc:
            raise AuthError(500, "unexpected_failure", "Error updating user") from exc
        updated = await users.find_by_id(conn, user["id"])
        assert updated is not None
        return send_json(200, await users.user_json(conn, updated))


async def _update(
    conn: Conn, user: dict[str, Any], params: dict[str, Any], email: str, hashed: str | None, ban: timedelta | None
) -> None:
    user_id = user["id"]
    if params.get("role"):
        await conn.execute("update auth.users set role = $2, updated_at = now() where id = $1", user_id, params["role"])
    if params.get("email_confirm"):
        await conn.execute(
            "update auth.users set email_confirmed_at = now(), confirmation_token = '', updated_at = now(),"
            " raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || '{\"email_verified\": true}' where id = $1",
            user_id,
        )
    if hashed is not None:
        await set_password(conn, user_id, hashed, None)  # UpdatePassword(tx, nil): signed out everywhere
    if email:
        await _set_email(conn, user_id, email, bool(params.get("email_confirm")))
    for key, column in (("app_metadata", "raw_app_meta_data"), ("user_metadata", "raw_user_meta_data")):
        if key in params:
            current = await conn.fetchval(f"select {column} from auth.users where id = $1", user_id)
            merged = merge_metadata(json.loads(current or "null") or {}, params[key])
            await conn.execute(
                f"update auth.users set {column} = $2::jsonb, updated_at = now() where id = $1",
                user_id, json.dumps(merged),
            )  # fmt: skip
    if ban is not None:
        await conn.execute(
            "update auth.users set banned_until = case when $2::interval = interval '0' then null"
            " else now() + $2::interval end, updated_at = now() where id = $1",
            user_id, ban,
        )  # fmt: skip


async def _set_email(conn: Conn, user_id: uuid.UUID, email: str, verified: bool) -> None:
    changed = await conn.execute(
        "update auth.identities set identity_data = identity_data || jsonb_build_object('email', $2::text,"
        " 'email_verified', $3::boolean), updated_at = now() where provider_id = $1 and provider = 'email'",
        str(user_id), email, verified,
    )  # fmt: skip
    if changed == "UPDATE 0":
        data = {"sub": str(user_id), "email": email, "email_verified": verified, "phone_verified": False}
        await conn.execute(
            "insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at,"
            " updated_at) values ($1, $2, $3::jsonb, 'email', now(), now(), now())",
            str(user_id), user_id, json.dumps(data),
        )  # fmt: skip
    await conn.execute("update auth.users set email = $2, updated_at = now() where id = $1", user_id, email)
