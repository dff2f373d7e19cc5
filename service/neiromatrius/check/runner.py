"""Runs the checks in the checklist's order, each bounded, none stopping the others."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from . import deployed, people, services
from .model import Check
from .settings import SettingsReport, check_settings

MESSAGE_WITHIN = 60.0  # how long the test message may take to be answered, polling included


async def bounded(name: str, work: Awaitable[Check], within: float, variable: str | None = None) -> Check:
    """``work``'s result, or a failed line when it hangs past ``within`` or breaks unexpectedly."""
    try:
        return await asyncio.wait_for(work, within)
    except TimeoutError:
        return Check.failed(name, f"no answer within {within:.0f}s", "check the network path and the service", variable)
    except Exception as exc:  # the line must say what broke without a vendor message, which may hold a URL
        return Check.failed(
            name, f"failed unexpectedly ({type(exc).__name__})", "run again with LOG_LEVEL=DEBUG", variable
        )


async def pre_deploy(values: dict[str, Any], migrations_dir: Path, within: float) -> list[Check]:
    """The settings, then every service they point at; a check whose setting is broken is skipped (❌)."""
    report = check_settings(values)
    async with httpx.AsyncClient(timeout=httpx.Timeout(within, connect=min(5.0, within))) as http:
        groups = await asyncio.gather(
            _database(report, migrations_dir, within),
            _one(report, "PostgREST", ("SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY"),
                 lambda: services.postgrest(http, report.settings), within),
            _one(report, "Realtime", ("SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY"),
                 lambda: services.realtime(report.settings, within * 0.9), within),
            _one(report, "Auth", ("SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY"),
                 lambda: people.auth(http, report.settings), within),
            _one(report, "Operators", ("SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY"),
                 lambda: people.admins(http, report.settings), within),
            _optional(report, values, "OpenAI", ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"),
                      lambda: services.openai(http, report.settings), within),
            _optional(report, values, "Telegram", ("TELEGRAM_BOT_TOKEN",),
                      lambda: services.telegram(http, report.settings), within),
            _optional(report, values, "Redis", ("REDIS_URL",),
                      lambda: services.redis_ping(values["redis_url"], within * 0.9), within),
        )  # fmt: skip
    return _scrubbed([*report.checks, *(check for group in groups for check in group)], _secrets(values))


async def post_deploy(base_url: str, intake_key: str | None, within: float) -> list[Check]:
    """``/health``, ``/api/health/db`` and the test message, against the deployed API (its own settings)."""
    base = base_url.rstrip("/")
    async with httpx.AsyncClient(timeout=httpx.Timeout(within, connect=min(5.0, within))) as http:
        checks = [
            await bounded("/health", deployed.health(http, base), within),
            await bounded("/api/health/db", deployed.health_db(http, base), within),
            await bounded("Test message", deployed.test_message(http, base, intake_key, MESSAGE_WITHIN),
                          MESSAGE_WITHIN + within),
        ]  # fmt: skip
    return _scrubbed(checks, [intake_key] if intake_key else [])


async def _database(report: SettingsReport, migrations_dir: Path, within: float) -> list[Check]:
    url = report.settings.database_url
    if url is None or not report.usable("DATABASE_URL"):
        return [
            Check.skipped("Database", "DATABASE_URL", "DATABASE_URL"),
            Check.skipped("Migrations", "DATABASE_URL", "DATABASE_URL"),
        ]
    database = await bounded("Database", services.database(url, within * 0.9), within, "DATABASE_URL")
    if not database.ok:
        return [
            database,
            Check.skipped("Migrations", "a database that answers", "DATABASE_URL", "see the Database line"),
        ]
    return [database, await bounded("Migrations", services.migrations(url, migrations_dir, within * 0.9), within)]


async def _one(
    report: SettingsReport, name: str, needs: tuple[str, ...], work: Callable[[], Awaitable[Check]], within: float
) -> list[Check]:
    broken = [variable for variable in needs if not report.usable(variable)]
    if broken:
        return [Check.skipped(name, " and ".join(broken), broken[0])]
    return [await bounded(name, work(), within, needs[0])]


async def _optional(
    report: SettingsReport,
    values: dict[str, Any],
    name: str,
    needs: tuple[str, ...],
    work: Callable[[], Awaitable[Check]],
    within: float,
) -> list[Check]:
    """Only when its first setting is set: an unset OpenAI key, bot token or Redis URL is a choice."""
    if not values.get(needs[0].lower()):
        return []
    return await _one(report, name, needs, work, within)


def _secrets(values: dict[str, Any]) -> list[str]:
    names = ("supabase_service_role_key", "supabase_anon_key", "secret_key", "openai_api_key", "telegram_bot_token",
             "intake_api_key", "webhook_secret", "telegram_webhook_secret", "metrics_token")  # fmt: skip
    found = [str(values[name]) for name in names if values.get(name)]
    for url_name in ("database_url", "redis_url"):
        try:
            password = urlsplit(str(values.get(url_name) or "")).password
        except ValueError:
            password = None
        if password:
            found.append(password)
    return found


def _scrubbed(checks: Iterable[Check], secrets: list[str]) -> list[Check]:
    """Belt and braces: no line may carry a secret's value, whatever a check put in it."""

    def scrub(text: str) -> str:
        for secret in secrets:
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    return [replace(check, detail=scrub(check.detail), fix=scrub(check.fix)) for check in checks]
