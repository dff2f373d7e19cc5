"""Rows of auth.users and auth.identities, and the user object GoTrue answers with.

JSON fields and their order: ``models.User`` and ``models.Identity`` in supabase/auth
(internal/models/user.go, identity.go); maps are marshalled with sorted keys, as Go does.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from .wire import go_time

Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
NIL_UUID = uuid.UUID(int=0)

USER_COLUMNS = """id, aud, role, email, encrypted_password, email_confirmed_at, invited_at, phone,
  phone_confirmed_at, confirmation_sent_at, confirmed_at, recovery_sent_at, email_change, email_change_sent_at,
  phone_change, phone_change_sent_at, reauthentication_sent_at, last_sign_in_at, raw_app_meta_data,
  raw_user_meta_data, created_at, updated_at, banned_until, deleted_at, is_anonymous, is_sso_user"""

# (JSON name, column) in models.User's order; None-valued optional fields are left out (omitempty).
_OPTIONAL_TIMES_BEFORE_CONFIRM = ("email_confirmed_at", "invited_at")
_AFTER_PHONE = (
    ("phone_confirmed_at", "phone_confirmed_at"),
    ("confirmation_sent_at", "confirmation_sent_at"),
    ("confirmed_at", "confirmed_at"),
    ("recovery_sent_at", "recovery_sent_at"),
    ("new_email", "email_change"),
    ("email_change_sent_at", "email_change_sent_at"),
    ("new_phone", "phone_change"),
    ("phone_change_sent_at", "phone_change_sent_at"),
    ("reauthentication_sent_at", "reauthentication_sent_at"),
    ("last_sign_in_at", "last_sign_in_at"),
)


def decode(row: asyncpg.Record) -> dict[str, Any]:
    """A user row as a dict, with ``app_metadata``/``user_metadata`` decoded from jsonb."""
    user = dict(row)
    user["app_metadata"] = json.loads(user.pop("raw_app_meta_data") or "null") or {}
    user["user_metadata"] = json.loads(user.pop("raw_user_meta_data") or "null") or {}
    return user


async def find_by_email(conn: Conn, email: str, aud: str) -> dict[str, Any] | None:
    """``FindUserByEmailAndAudience``: case-insensitive, SSO users excluded."""
    row = await conn.fetchrow(
        f"select {USER_COLUMNS} from auth.users where instance_id = $1 and lower(email) = lower($2)"
        " and aud = $3 and is_sso_user = false",
        NIL_UUID, email, aud,
    )  # fmt: skip
    return decode(row) if row else None


async def find_by_id(conn: Conn, user_id: uuid.UUID, *, for_update: bool = False) -> dict[str, Any] | None:
    lock = " for update" if for_update else ""
    row = await conn.fetchrow(f"select {USER_COLUMNS} from auth.users where id = $1{lock}", user_id)
    return decode(row) if row else None


async def identities(conn: Conn, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    rows = await conn.fetch(
        "select id, provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, email"
        " from auth.identities where user_id = any($1::uuid[]) order by created_at, id",
        user_ids,
    )
    found: dict[uuid.UUID, list[dict[str, Any]]] = {user_id: [] for user_id in user_ids}
    for row in rows:
        found[row["user_id"]].append(_identity_json(row))
    return found


async def user_json(conn: Conn, user: dict[str, Any]) -> dict[str, Any]:
    """The user object with its identities (GoTrue loads them eagerly)."""
    linked = await identities(conn, [user["id"]])
    return to_json(user, linked[user["id"]])


def to_json(user: dict[str, Any], linked: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(user["id"]), "aud": user["aud"] or "", "role": user["role"] or ""}
    out["email"] = user["email"] or ""
    for name in _OPTIONAL_TIMES_BEFORE_CONFIRM:
        if user[name] is not None:
            out[name] = go_time(user[name])
    out["phone"] = user["phone"] or ""
    for name, column in _AFTER_PHONE:
        value = user[column]
        if value:
            out[name] = value if isinstance(value, str) else go_time(value)
    out["app_metadata"] = _sorted(user["app_metadata"])
    out["user_metadata"] = _sorted(user["user_metadata"])
    out["identities"] = linked
    out["created_at"] = _time_or_zero(user["created_at"])
    out["updated_at"] = _time_or_zero(user["updated_at"])
    for name in ("banned_until", "deleted_at"):
        if user[name] is not None:
            out[name] = go_time(user[name])
    out["is_anonymous"] = bool(user["is_anonymous"])
    return out


def _identity_json(row: asyncpg.Record) -> dict[str, Any]:
    out: dict[str, Any] = {
        "identity_id": str(row["id"]),
        "id": row["provider_id"],
        "user_id": str(row["user_id"]),
        "identity_data": _sorted(json.loads(row["identity_data"])),
        "provider": row["provider"],
    }
    if row["last_sign_in_at"] is not None:
        out["last_sign_in_at"] = go_time(row["last_sign_in_at"])
    out["created_at"] = _time_or_zero(row["created_at"])
    out["updated_at"] = _time_or_zero(row["updated_at"])
    if row["email"]:
        out["email"] = row["email"]
    return out


def _time_or_zero(value: datetime | None) -> str:
    # Rows written around GoTrue may lack these; Go would print its zero time.
    return go_time(value) if value is not None else "0001-01-01T00:00:00Z"


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


async def email_taken(conn: Conn, email: str, aud: str, except_id: uuid.UUID | None) -> bool:
    """``IsDuplicatedEmail``: another non-SSO user of the audience has this address."""
    taken = await conn.fetchval(
        "select exists (select from auth.users where lower(email) = lower($1) and aud = $2"
        " and is_sso_user = false and id is distinct from $3)",
        email, aud, except_id,
    )  # fmt: skip
    return bool(taken)


def is_banned(user: dict[str, Any], now: datetime) -> bool:
    return user["banned_until"] is not None and user["banned_until"] > now
