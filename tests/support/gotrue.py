"""Helpers for the /auth/v1 tests: users made through the admin API (so they work on a real
Supabase too), raw GoTrue calls, and a fingerprint of the auth tables to prove nothing was written."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import jwt

from tests.conftest import Stack


@dataclass(frozen=True)
class AuthUser:
    id: str
    email: str
    password: str


class GoTrue:
    """Raw calls to ``/auth/v1`` with the anon key, as a browser would make them."""

    def __init__(self, stack: Stack, http: httpx.AsyncClient) -> None:
        self.stack = stack
        self.http = http
        self.base = f"{stack.url}/auth/v1"

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        headers = {"apikey": self.stack.anon_key, **extra}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def admin_headers(self) -> dict[str, str]:
        return {"apikey": self.stack.service_key, "Authorization": f"Bearer {self.stack.service_key}"}

    async def sign_in(self, email: str, password: str, **headers: str) -> httpx.Response:
        return await self.http.post(
            f"{self.base}/token", params={"grant_type": "password"}, json={"email": email, "password": password},
            headers=self.headers(**headers),
        )  # fmt: skip

    async def session(self, user: AuthUser) -> dict[str, Any]:
        response = await self.sign_in(user.email, user.password)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def refresh(self, refresh_token: str) -> httpx.Response:
        return await self.http.post(
            f"{self.base}/token", params={"grant_type": "refresh_token"}, json={"refresh_token": refresh_token},
            headers=self.headers(),
        )  # fmt: skip

    async def create_user(self, **fields: Any) -> httpx.Response:
        return await self.http.post(f"{self.base}/admin/users", json=fields, headers=self.admin_headers())


@dataclass
class UserFactory:
    gotrue: GoTrue
    created: list[str]

    async def __call__(self, *, confirm: bool = True, **fields: Any) -> AuthUser:
        email = fields.pop("email", f"auth-{uuid.uuid4().hex[:12]}@example.com")
        password = fields.pop("password", f"pw-{uuid.uuid4().hex}")
        response = await self.gotrue.create_user(email=email, password=password, email_confirm=confirm, **fields)
        assert response.status_code == 200, response.text
        user_id = response.json()["id"]
        self.created.append(user_id)
        return AuthUser(user_id, email.lower(), password)


async def user_factory(gotrue: GoTrue) -> AsyncIterator[UserFactory]:
    factory = UserFactory(gotrue, [])
    yield factory
    for user_id in factory.created:
        await gotrue.http.delete(f"{gotrue.base}/admin/users/{user_id}", headers=gotrue.admin_headers())


AUTH_TABLES = ("users", "identities", "sessions", "refresh_tokens", "mfa_amr_claims")


async def auth_fingerprint(db: asyncpg.Connection) -> dict[str, str]:
    """An md5 of every row of each auth table: equal fingerprints mean nothing was written."""
    fingerprint = {}
    for table in AUTH_TABLES:
        digest = await db.fetchval(
            f"select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from auth.{table} t"
        )
        fingerprint[table] = str(digest)
    return fingerprint


def claims_of(stack: Stack, token: str) -> dict[str, Any]:
    """An access token's claims, checked with the stack's JWT secret and GoTrue's audience."""
    decoded: dict[str, Any] = jwt.decode(token, stack.jwt_secret, algorithms=["HS256"], audience="authenticated")
    return decoded


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    """Status, ``error_code`` and ``msg`` of a GoTrue error answer (the shape without an API version)."""
    body = response.json()
    return response.status_code, body["error_code"], body["msg"]
