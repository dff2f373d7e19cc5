"""Operators for tests: an auth.users row (as GoTrue would write it) plus an operators row, made with SQL.

Tests that only need an operator's token use ``Stack.user_token(sub=...)``; the auth user exists so that
operators' foreign key holds. Deleting the auth user removes the operator (the key cascades).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

NIL_UUID = "00000000-0000-0000-0000-000000000000"  # GoTrue's instance_id; its admin API lists only these


@dataclass(frozen=True)
class Operator:
    user_id: str
    email: str
    role: str


class Operators:
    """Creates auth users and operators; ``cleanup`` deletes every auth user it made."""

    def __init__(self, db: asyncpg.Connection) -> None:
        self._db = db
        self._made: list[str] = []

    async def user(self, email: str | None = None) -> str:
        """An auth user with no operators row; returns its id."""
        user_id = str(uuid.uuid4())
        email = email or f"user-{user_id[:8]}@test.neiromatrius.local"
        await self._db.execute(
            "insert into auth.users (instance_id, id, aud, role, email, email_confirmed_at, raw_app_meta_data,"
            " raw_user_meta_data, created_at, updated_at)"
            " values ($1, $2, 'authenticated', 'authenticated', $3, now(), '{}', '{}', now(), now())",
            NIL_UUID,
            user_id,
            email,
        )
        self._made.append(user_id)
        return user_id

    async def make(self, role: str = "agent", *, active: bool = True, name: str | None = None) -> Operator:
        user_id = await self.user()
        await self._db.execute(
            "insert into public.operators (user_id, role, active, display_name) values ($1, $2, $3, $4)",
            user_id,
            role,
            active,
            name or f"Test {role}",
        )
        email = await self._db.fetchval("select email from auth.users where id = $1", user_id)
        return Operator(user_id=user_id, email=email, role=role)

    async def set_active(self, user_id: str, active: bool) -> None:
        await self._db.execute("update public.operators set active = $2 where user_id = $1", user_id, active)

    async def cleanup(self) -> None:
        await self._db.execute("delete from auth.users where id = any($1::uuid[])", self._made)
