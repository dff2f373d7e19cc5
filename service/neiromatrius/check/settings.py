"""The settings half of the checklist: every variable validated on its own, every problem reported.

``load_settings`` stops at the first wrong value, as start-up should. Here each variable gets its
own line, so the values are read the way ``Settings`` reads them (environment over ``.env``) and
validated together; a variable that fails is replaced by a placeholder so the rest still validate,
and the checks that need it are skipped later. No line ever shows a secret's value.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from pydantic import ValidationError
from pydantic_settings import BaseSettings, DotEnvSettingsSource, EnvSettingsSource, PydanticBaseSettingsSource

from ..config import Settings, describe
from .model import Check

# Valid stand-ins for required variables that are missing or wrong; the checks needing them are skipped.
_PLACEHOLDERS: dict[str, Any] = {
    "supabase_url": "http://placeholder.invalid",
    "supabase_service_role_key": "placeholder",
    "secret_key": "p" * 32,
}
_DASHBOARD_API = "Supabase Dashboard → Settings → API (or the self-hosted .env)"
FIXES = {
    "SUPABASE_URL": "set it to the project's API URL, e.g. https://<project>.supabase.co or your Kong URL",
    "SUPABASE_SERVICE_ROLE_KEY": f"copy the service_role (secret) key from {_DASHBOARD_API}",
    "SUPABASE_ANON_KEY": f"copy the anon (publishable) key from {_DASHBOARD_API}",
    "DATABASE_URL": "copy the connection string from Supabase Dashboard → Settings → Database "
    "and add +asyncpg after postgresql: postgresql+asyncpg://postgres:PASSWORD@HOST:5432/postgres",
    "SECRET_KEY": "generate one: python -c 'import secrets; print(secrets.token_urlsafe(48))'",
    "ALLOWED_ORIGINS": 'write a JSON array (["https://app.example.com"]) or comma-separated origins',
    "REDIS_URL": "use redis://[:PASSWORD@]HOST:6379/0, or unset it to use the in-memory fallback",
    "TELEGRAM_BOT_TOKEN": "copy the token @BotFather gave (123456789:AA…), or set TELEGRAM_ENABLED=false",
    "OPENAI_BASE_URL": "unset it for OpenAI, or give a compatible API's base URL (https://…/v1)",
}
ORDER = (
    "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_ANON_KEY", "DATABASE_URL", "SECRET_KEY", "ALLOWED_ORIGINS",
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "REDIS_URL", "TELEGRAM_BOT_TOKEN", "TELEGRAM_ENABLED",
)  # fmt: skip
_ORIGIN = re.compile(r"^https?://[^/\s]+$")


class _GivenSettings(Settings):
    """``Settings`` validating only the values it is given: the check has read the environment already."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


@dataclass(frozen=True)
class SettingsReport:
    settings: Settings  # placeholders stand in for the variables in ``broken``
    checks: list[Check]
    broken: frozenset[str]

    def usable(self, *variables: str) -> bool:
        return not self.broken.intersection(variables)


def read_values(env_files: Path | Sequence[Path] | None) -> dict[str, Any]:
    """What ``Settings`` would read: the environment over the env files (later files over earlier), by field name."""
    values: dict[str, Any] = {}
    files = [env_files] if isinstance(env_files, Path) else list(env_files or [])
    if files:
        values.update(DotEnvSettingsSource(Settings, env_file=files)())
    values.update(EnvSettingsSource(Settings)())
    return values


def check_settings(values: dict[str, Any]) -> SettingsReport:
    settings, problems = _validate(values)
    checks = [_problem(variable, message) for variable, message in problems.items()]
    seen = set(problems)
    for check in _checklist(settings, values):
        if check.variable not in seen:
            checks.append(check)
            seen.add(check.variable or "")
    checks.sort(key=lambda c: ORDER.index(c.variable) if c.variable in ORDER else len(ORDER))
    broken = frozenset(check.variable for check in checks if not check.ok and check.variable)
    return SettingsReport(settings, checks, broken)


def _validate(values: dict[str, Any]) -> tuple[Settings, dict[str, str]]:
    """Settings from the values that are valid, and one message per variable that is not."""
    problems: dict[str, str] = {}
    remaining, stand_ins = dict(values), dict[str, Any]()
    for _ in range(len(values) + len(_PLACEHOLDERS) + 2):  # each round removes at least one wrong value
        try:
            return _GivenSettings(**stand_ins, **remaining), problems
        except ValidationError as exc:
            for error in exc.errors():
                problem = describe(error)
                problems.setdefault(problem.variable, problem.message.removeprefix(f"{problem.variable}: "))
                field = problem.variable.lower()
                remaining.pop(field, None)
                if field in _PLACEHOLDERS:
                    stand_ins[field] = _PLACEHOLDERS[field]
                if not error["loc"]:  # a rule across settings: TELEGRAM_ENABLED without a token
                    remaining.pop("telegram_enabled", None)
    raise RuntimeError("settings did not validate even with placeholders")  # a bug here, not in the settings


def _problem(variable: str, message: str) -> Check:
    if variable == "DATABASE_URL" and "pattern" in message:
        message, fix = "must start with postgresql+asyncpg://", "add +asyncpg after postgresql"
    elif variable == "ALLOWED_ORIGINS":
        message, fix = f"does not parse ({message})", FIXES[variable]
    else:
        message = re.sub(r"String should match pattern '\^https\?://'", "must start with http:// or https://", message)
        fix = FIXES.get(variable, f"correct {variable} (docs/operations.md lists every setting)")
    return Check.failed(variable, message, fix, variable)


def _checklist(settings: Settings, values: dict[str, Any]) -> list[Check]:
    service_key = settings.supabase_service_role_key.get_secret_value()
    anon_key = settings.supabase_anon_key.get_secret_value() if settings.supabase_anon_key else None
    return [
        Check.passed("SUPABASE_URL", f"is {settings.supabase_url}", "SUPABASE_URL"),
        _key_role("SUPABASE_SERVICE_ROLE_KEY", service_key, "service_role", "sb_secret_", "SUPABASE_ANON_KEY"),
        _key_role("SUPABASE_ANON_KEY", anon_key, "anon", "sb_publishable_", "SUPABASE_SERVICE_ROLE_KEY"),
        _database_url(settings.database_url),
        Check.passed("SECRET_KEY", f"has {len(settings.secret_key.get_secret_value())} characters (32+)", "SECRET_KEY"),
        _origins(settings.allowed_origins),
        _optional(
            "OPENAI_API_KEY", values, f"is set (model {settings.openai_model})", "is not set: the offline model answers"
        ),
        _optional("REDIS_URL", values, "format is right", "is not set: the in-memory fallback"),
        _optional("TELEGRAM_BOT_TOKEN", values, "format is right", "is not set: Telegram is off"),
    ]


def _key_role(variable: str, key: str | None, role: str, new_prefix: str, other: str) -> Check:
    if key is None:
        return Check.failed(variable, "is required for the check", FIXES[variable], variable)
    if key.startswith(("sb_secret_", "sb_publishable_")):
        if key.startswith(new_prefix):
            return Check.passed(variable, f"is a {new_prefix}… key", variable)
        return Check.failed(
            variable, f"is not a {new_prefix}… key", f"swapped with {other}? {FIXES[variable]}", variable
        )
    try:
        claims = jwt.decode(key, options={"verify_signature": False})
    except jwt.PyJWTError:
        detail = f"is neither a JWT nor a {new_prefix}… key"
        return Check.failed(variable, detail, FIXES[variable], variable)
    found = claims.get("role")
    if found != role:
        fix = f"swapped with {other}? {FIXES[variable]}" if found in ("anon", "service_role") else FIXES[variable]
        return Check.failed(variable, f"carries role {found!r}, not {role!r}", fix, variable)
    expires = claims.get("exp")
    if isinstance(expires, int | float) and expires < time.time():
        return Check.failed(variable, "has expired", FIXES[variable], variable)
    return Check.passed(variable, f"carries role {role}", variable)


def _database_url(url: str | None) -> Check:
    variable = "DATABASE_URL"
    if url is None:
        return Check.failed(variable, "is required for the check", FIXES[variable], variable)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return Check.failed(variable, "has a port that is not a number", FIXES[variable], variable)
    if not parts.hostname or not parts.path.strip("/"):
        return Check.failed(variable, "needs a host and a database name", FIXES[variable], variable)
    return Check.passed(variable, f"format is right ({parts.hostname}:{port or 5432}{parts.path})", variable)


def _origins(origins: list[str]) -> Check:
    variable = "ALLOWED_ORIGINS"
    wrong = [origin for origin in origins if origin != "*" and not _ORIGIN.match(origin)]
    if wrong:
        detail = f"{json.dumps(wrong[0])} is not an origin (scheme://host[:port], no path or trailing slash)"
        return Check.failed(variable, detail, FIXES[variable], variable)
    listed = f"{len(origins)} origin(s)" if origins else "empty, no browser origin is allowed"
    return Check.passed(variable, f"parses: {listed}", variable)


def _optional(variable: str, values: dict[str, Any], when_set: str, when_unset: str) -> Check:
    return Check.passed(variable, when_set if values.get(variable.lower()) else when_unset, variable)
