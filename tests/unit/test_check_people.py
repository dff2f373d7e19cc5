"""The Auth and Operators lines of ``neiromatrius check``, against answers served by a swapped-in transport."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from neiromatrius.check import people
from neiromatrius.check.model import Check
from neiromatrius.config import Settings

SERVICE_KEY = "service-key-for-the-unit-tests"


def settings() -> Settings:
    return Settings(
        _env_file=None, supabase_url="https://project.supabase.co", supabase_service_role_key=SERVICE_KEY,
        secret_key="k" * 40,
    )  # type: ignore[call-arg]  # fmt: skip


async def run(
    check: Callable[[httpx.AsyncClient, Settings], object], handler: Callable[[httpx.Request], httpx.Response]
) -> Check:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        result = await check(http, settings())  # type: ignore[misc]
    assert isinstance(result, Check)
    return result


def answer(status: int, body: object) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, content=json.dumps(body).encode())


async def test_auth_passes_on_gotrues_health_and_sends_the_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "version": "v2.170.0",
                "name": "GoTrue",
                "description": "GoTrue is a user registration and authentication API",
            },
        )

    check = await run(people.auth, handler)
    assert check.line() == "✅ Auth answers /auth/v1/health (GoTrue v2.170.0)"
    assert str(seen[0].url) == "https://project.supabase.co/auth/v1/health"
    assert seen[0].headers["apikey"] == SERVICE_KEY


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (401, "❌ Auth (SUPABASE_SERVICE_ROLE_KEY): rejected the service key (401) — fix: copy the service_role"),
        (404, "❌ Auth (SUPABASE_URL): answered 404 to /auth/v1/health — fix: run Supabase Auth (GoTrue)"),
        (502, "❌ Auth (SUPABASE_URL): answered 502 to /auth/v1/health"),
    ],
)
async def test_auth_failures_name_the_setting_and_the_fix(status: int, line: str) -> None:
    check = await run(people.auth, answer(status, {"message": "no"}))
    assert check.line().startswith(line)


async def test_auth_unreachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    check = await run(people.auth, handler)
    assert check.line().startswith("❌ Auth (SUPABASE_URL): cannot reach project.supabase.co (ConnectError)")


async def test_operators_counts_active_admins_with_a_filtered_select() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[{"user_id": "a"}, {"user_id": "b"}])

    check = await run(people.admins, handler)
    assert check.line() == "✅ Operators have 2 active admins"
    assert dict(seen[0].url.params) == {"select": "user_id", "role": "eq.admin", "active": "eq.true"}


@pytest.mark.parametrize(
    ("status", "body", "line"),
    [
        (200, [], "❌ Operators: have no active admin: nobody can manage operators — fix: create one: neiromatrius"),
        (400, {"code": "42703", "message": "column operators.role does not exist"},
         "❌ Operators: have no roles table yet — fix: apply the migrations"),
        (404, {"code": "PGRST205", "message": "no table"}, "❌ Operators: have no roles table yet"),
        (403, {"code": "42501"}, "❌ Operators (SUPABASE_SERVICE_ROLE_KEY): rejected the service key (403)"),
    ],
)  # fmt: skip
async def test_operators_failures(status: int, body: object, line: str) -> None:
    check = await run(people.admins, answer(status, body))
    assert check.line().startswith(line)
