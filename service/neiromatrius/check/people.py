"""The checks for people signing in: Supabase Auth answers, and someone can administer operators.

Kong asks for an API key on ``/auth/v1/*`` too (only verify, callback and authorize are open), so the
health call carries the service key, as the other checks do.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from ..config import Settings
from .model import Check
from .services import _supabase_headers
from .settings import FIXES

_KEY = "SUPABASE_SERVICE_ROLE_KEY"
# A missing table or column: the operators-and-roles migration has not been applied.
_NOT_MIGRATED = {"42P01", "42703", "PGRST200", "PGRST204", "PGRST205"}


def _unreachable(name: str, url: str, exc: Exception) -> Check:
    detail = f"cannot reach {urlsplit(url).netloc} ({type(exc).__name__})"
    return Check.failed(name, detail, FIXES["SUPABASE_URL"], "SUPABASE_URL")


def _key_refused(name: str, status: int) -> Check:
    return Check.failed(name, f"rejected the service key ({status})", FIXES[_KEY], _KEY)


async def auth(http: httpx.AsyncClient, settings: Settings) -> Check:
    name = "Auth"
    url = f"{settings.supabase_url.rstrip('/')}/auth/v1/health"
    try:
        response = await http.get(url, headers=_supabase_headers(settings.supabase_service_role_key.get_secret_value()))
    except httpx.HTTPError as exc:
        return _unreachable(name, url, exc)
    if response.status_code in (401, 403):
        return _key_refused(name, response.status_code)
    if response.status_code != 200:
        fix = "run Supabase Auth (GoTrue) behind SUPABASE_URL: the auth service of self-hosted Supabase"
        return Check.failed(name, f"answered {response.status_code} to /auth/v1/health", fix, "SUPABASE_URL")
    return Check.passed(name, f"answers /auth/v1/health{_version(response)}")


def _version(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
        version = body.get("version")
    except (ValueError, AttributeError):
        return ""
    return f" ({body.get('name') or 'GoTrue'} {version})" if isinstance(version, str) and version else ""


async def admins(http: httpx.AsyncClient, settings: Settings) -> Check:
    name = "Operators"
    url = f"{settings.supabase_url.rstrip('/')}/rest/v1/operators"
    params = {"select": "user_id", "role": "eq.admin", "active": "eq.true"}
    try:
        response = await http.get(
            url, params=params, headers=_supabase_headers(settings.supabase_service_role_key.get_secret_value())
        )
    except httpx.HTTPError as exc:
        return _unreachable(name, url, exc)
    if response.status_code in (401, 403):
        return _key_refused(name, response.status_code)
    if response.status_code != 200:
        if response.status_code == 404 or _code(response) in _NOT_MIGRATED:
            return Check.failed(name, "have no roles table yet", "apply the migrations: supabase db push")
        return Check.failed(name, f"answered {response.status_code}", "look at the PostgREST and database logs")
    count = len(response.json())
    if count == 0:
        fix = "create one: neiromatrius operator add EMAIL --role admin (or neiromatrius operator activate EMAIL)"
        return Check.failed(name, "have no active admin: nobody can manage operators", fix)
    return Check.passed(name, f"have {count} active admin{'s' if count > 1 else ''}")


def _code(response: httpx.Response) -> str | None:
    try:
        body: Any = response.json()
        code = body.get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, str) else None
