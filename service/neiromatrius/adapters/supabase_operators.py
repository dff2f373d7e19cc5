"""Operator accounts over supabase-py: ``SupabaseAuthAdmin`` (GoTrue's /auth/v1/admin/users with the service
key) and ``SupabaseOperatorDirectory`` (the operators table through PostgREST).

GoTrue's answers (supabase/auth ``internal/api/admin.go``, ``errorcodes.go``): a taken email is 422
``email_exists``, a malformed email 400 ``validation_failed`` (or ``email_address_invalid``), a password
over bcrypt's 72 bytes 400 ``validation_failed`` too, one under the project's minimum 422
``weak_password``; a key without the service role gets 401/403.
"""

from __future__ import annotations

from typing import Any

import httpx
from postgrest import APIError
from supabase import AsyncClient
from supabase_auth.errors import AuthApiError, AuthError, AuthRetryableError

from ..core.operators import AuthUser, OperatorRow, Role
from ..errors import AlreadyExists, InputError, StoreError, StoreUnavailable
from .supabase_store import _translate

PAGE = 200  # users per admin API page; operators are few, so a lookup reads a handful of pages at most
BAN_FOR_GOOD = "876000h"  # 100 years
_EMAIL_CODES = {"validation_failed", "email_address_invalid", "email_address_not_authorized"}


def _auth_error(exc: AuthError, what: str) -> Exception:
    status = exc.status if isinstance(exc, AuthApiError) else None
    if isinstance(exc, AuthRetryableError) or (status is not None and status >= 500):
        return StoreUnavailable(f"{what}: Supabase Auth does not answer ({status or 'network'})")
    if exc.code in ("email_exists", "user_already_exists"):
        return AlreadyExists("email", "this email has an Auth account already")
    if exc.code == "weak_password" or (exc.code == "validation_failed" and "password" in exc.message.lower()):
        return InputError("password", f"Supabase Auth refused the password: {exc.message}")
    if exc.code in _EMAIL_CODES:
        return InputError("email", f"Supabase Auth refused the email: {exc.message}")
    if status in (401, 403):
        return StoreError(f"{what}: Supabase Auth refused the key (is SUPABASE_SERVICE_ROLE_KEY the service key?)")
    return StoreError(f"{what}: Supabase Auth answered {status} {exc.code or ''}".rstrip())


class SupabaseAuthAdmin:
    def __init__(self, client: AsyncClient) -> None:
        self._admin = client.auth.admin

    async def users(self) -> list[AuthUser]:
        found: list[AuthUser] = []
        page = 1
        while True:
            try:
                batch = await self._admin.list_users(page=page, per_page=PAGE)
            except AuthError as exc:
                raise _auth_error(exc, "listing Auth users") from exc
            found.extend(AuthUser(id=user.id, email=user.email) for user in batch if user.email)
            if len(batch) < PAGE:
                return found
            page += 1

    async def find_user(self, email: str) -> AuthUser | None:
        wanted = email.lower()
        return next((user for user in await self.users() if user.email.lower() == wanted), None)

    async def create_user(self, email: str, password: str) -> AuthUser:
        try:
            response = await self._admin.create_user({"email": email, "password": password, "email_confirm": True})
        except AuthError as exc:
            raise _auth_error(exc, "creating the Auth user") from exc
        return AuthUser(id=response.user.id, email=response.user.email or email)

    async def delete_user(self, user_id: str) -> None:
        try:
            await self._admin.delete_user(user_id)
        except AuthError as exc:
            raise _auth_error(exc, "deleting the Auth user") from exc

    async def set_banned(self, user_id: str, banned: bool) -> None:
        # GoTrue takes a Go duration and has no "forever"; "none" lifts a ban.
        try:
            await self._admin.update_user_by_id(user_id, {"ban_duration": BAN_FOR_GOOD if banned else "none"})
        except AuthError as exc:
            raise _auth_error(exc, "banning the Auth user" if banned else "lifting the Auth user's ban") from exc


class SupabaseOperatorDirectory:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _rows(self, what: str, query: Any) -> list[OperatorRow]:
        try:
            response = await query.execute()
        except (APIError, httpx.HTTPError) as exc:
            raise _translate(exc, what) from exc
        return [OperatorRow.model_validate(row) for row in response.data]

    async def get(self, user_id: str) -> OperatorRow | None:
        rows = await self._rows("operators", self._client.table("operators").select("*").eq("user_id", user_id))
        return rows[0] if rows else None

    async def all(self) -> list[OperatorRow]:
        return await self._rows("operators", self._client.table("operators").select("*").order("created_at"))

    async def add(self, user_id: str, role: Role, display_name: str | None) -> OperatorRow:
        row = {"user_id": user_id, "role": role.value, "display_name": display_name}
        [added] = await self._rows("adding the operator", self._client.table("operators").insert(row))
        return added

    async def set_active(self, user_id: str, active: bool) -> OperatorRow:
        query = self._client.table("operators").update({"active": active}).eq("user_id", user_id)
        [changed] = await self._rows("changing the operator", query)
        return changed
