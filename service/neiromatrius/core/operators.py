"""Operator accounts: a Supabase Auth user (email + password) plus an ``operators`` row (role, active).

The use cases go through two ports, so they work the same against the local stack and a real Supabase:
``AuthAdmin`` (GoTrue's admin API, with the service key) and ``OperatorDirectory`` (the operators table).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from ..errors import AlreadyExists, InputError, NotFound, StoreError
from .models import Model

# What GoTrue accepts is wider; this only catches typos before a round trip, GoTrue has the last word.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_CHARS = 6  # GoTrue's default minimum (GOTRUE_PASSWORD_MIN_LENGTH); a project may ask for more
MAX_PASSWORD_BYTES = 72  # bcrypt reads no further; GoTrue refuses longer passwords


class Role(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"


class AuthUser(Model):
    id: str
    email: str


class OperatorRow(Model):
    user_id: str
    role: Role
    active: bool
    display_name: str | None = None
    created_at: datetime


class Operator(Model):
    """An operator as people see it: the row plus the account's email."""

    user_id: str
    email: str | None  # None: the Auth user is gone (the row would have cascaded) or unreadable
    role: Role
    active: bool
    display_name: str | None
    created_at: datetime


class AuthAdmin(Protocol):
    """Supabase Auth's admin API. Raises ``StoreUnavailable``/``StoreError`` when Auth fails."""

    async def find_user(self, email: str) -> AuthUser | None:
        """The account with this email (case-insensitive), if any."""
        ...

    async def users(self) -> list[AuthUser]: ...

    async def create_user(self, email: str, password: str) -> AuthUser:
        """A confirmed account. Raise ``AlreadyExists`` for a taken email, ``InputError`` for a refused value."""
        ...

    async def delete_user(self, user_id: str) -> None: ...

    async def set_banned(self, user_id: str, banned: bool) -> None:
        """Refuse (or allow again) the account's sign-ins and token refreshes."""
        ...


class OperatorDirectory(Protocol):
    """The ``operators`` table, with the service role."""

    async def get(self, user_id: str) -> OperatorRow | None: ...

    async def all(self) -> list[OperatorRow]: ...

    async def add(self, user_id: str, role: Role, display_name: str | None) -> OperatorRow: ...

    async def set_active(self, user_id: str, active: bool) -> OperatorRow: ...


@dataclass(frozen=True)
class Added:
    operator: Operator
    generated_password: str | None  # shown once: the only copy
    existing_account: bool  # the Auth account was there already; its password is unchanged


def normalise_email(email: str) -> str:
    value = email.strip().lower()
    if not _EMAIL.match(value):
        raise InputError("email", f"{email!r} is not an email address")
    return value


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InputError("password", f"must be at least {MIN_PASSWORD_CHARS} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise InputError("password", f"must be at most {MAX_PASSWORD_BYTES} bytes (bcrypt reads no further)")
    return password


def generate_password() -> str:
    return secrets.token_urlsafe(18)  # 24 characters, 144 bits


class OperatorAccounts:
    def __init__(self, auth: AuthAdmin, directory: OperatorDirectory) -> None:
        self._auth = auth
        self._directory = directory

    async def add(self, email: str, role: Role, display_name: str | None, password: str | None) -> Added:
        """Create the account and its operators row; ``password`` None means generate one.

        An existing Auth account without an operators row (made in Studio, or left by an interrupted
        add) becomes an operator with its password unchanged, unless a password was given for it.
        """
        email = normalise_email(email)
        if password is not None:
            check_password(password)
        existing = await self._auth.find_user(email)
        if existing is not None:
            return await self._attach(existing, role, display_name, password)
        secret = password if password is not None else generate_password()
        user = await self._auth.create_user(email, secret)
        try:
            row = await self._directory.add(user.id, role, display_name)
        except StoreError:
            await self._auth.delete_user(user.id)  # no account without its operators row
            raise
        return Added(_view(row, user.email), None if password is not None else secret, existing_account=False)

    async def _attach(self, user: AuthUser, role: Role, display_name: str | None, password: str | None) -> Added:
        if await self._directory.get(user.id) is not None:
            raise AlreadyExists("email", f"{user.email} is an operator already (see `neiromatrius operator list`)")
        if password is not None:
            raise AlreadyExists(
                "email",
                f"{user.email} has an Auth account already, with its own password: run again without a password"
                " on stdin to make it an operator as it is",
            )
        row = await self._directory.add(user.id, role, display_name)
        return Added(_view(row, user.email), None, existing_account=True)

    async def list(self) -> list[Operator]:
        emails = {user.id: user.email for user in await self._auth.users()}
        rows = await self._directory.all()
        return sorted((_view(row, emails.get(row.user_id)) for row in rows), key=lambda o: (o.email or "", o.user_id))

    async def set_active(self, email: str, active: bool) -> Operator:
        """The operators row is what RLS checks, so it changes first when access ends and last when it returns.

        Deactivating also bans the Auth account (no sign-in, no refresh: the console sends the person back
        to sign-in), activating lifts the ban. Both run even when the row already says so, which repairs an
        earlier call that Auth failed half-way.
        """
        email = normalise_email(email)
        user = await self._auth.find_user(email)
        row = await self._directory.get(user.id) if user is not None else None
        if user is None or row is None:
            raise NotFound(f"no operator with the email {email} (see `neiromatrius operator list`)")
        if not active and row.active:
            row = await self._directory.set_active(user.id, False)
        await self._auth.set_banned(user.id, not active)
        if active and not row.active:
            row = await self._directory.set_active(user.id, True)
        return _view(row, user.email)


def _view(row: OperatorRow, email: str | None) -> Operator:
    return Operator(
        user_id=row.user_id, email=email, role=row.role, active=row.active, display_name=row.display_name,
        created_at=row.created_at,
    )  # fmt: skip
