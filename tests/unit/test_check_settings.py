"""The settings half of ``neiromatrius check``: every problem on its own line, keys by their role, no secret shown."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from neiromatrius.check.model import Check, render_text
from neiromatrius.check.settings import check_settings, read_values

SIGNING = "local-jwt-secret-" + "s" * 32


def key(role: str, **claims: Any) -> str:
    return jwt.encode({"iss": "supabase", "role": role, **claims}, SIGNING, algorithm="HS256")


def good(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "supabase_url": "https://project.supabase.co",
        "supabase_service_role_key": key("service_role"),
        "supabase_anon_key": key("anon"),
        "database_url": "postgresql+asyncpg://postgres:pw@db.example.com:5432/postgres",
        "secret_key": "k" * 40,
        "allowed_origins": "https://app.example.com, http://localhost:3000",
    }
    values.update(overrides)
    return values


def failed(checks: list[Check]) -> dict[str, str]:
    return {check.name: check.detail for check in checks if not check.ok}


def test_good_settings_pass_every_line() -> None:
    report = check_settings(good())

    assert failed(report.checks) == {}
    assert report.broken == frozenset()
    assert [c.name for c in report.checks][:6] == [
        "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_ANON_KEY", "DATABASE_URL", "SECRET_KEY",
        "ALLOWED_ORIGINS",
    ]  # fmt: skip


def test_every_wrong_variable_gets_its_own_line_not_just_the_first() -> None:
    values = good(database_url="postgresql://postgres:pw@db/postgres", secret_key="short", api_port="eighty")

    report = check_settings(values)

    assert failed(report.checks) == {
        "DATABASE_URL": "must start with postgresql+asyncpg://",
        "SECRET_KEY": "must be at least 32 characters",
        "API_PORT": "Input should be a valid integer, unable to parse string as an integer",
    }
    assert report.broken == {"DATABASE_URL", "SECRET_KEY", "API_PORT"}
    assert report.usable("SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY")


def test_missing_required_settings_are_named() -> None:
    report = check_settings({"database_url": good()["database_url"]})

    problems = failed(report.checks)
    assert problems["SUPABASE_URL"] == "is required"
    assert problems["SUPABASE_SERVICE_ROLE_KEY"] == "is required"
    assert problems["SECRET_KEY"] == "is required"
    assert problems["SUPABASE_ANON_KEY"] == "is required for the check"


@pytest.mark.parametrize(
    ("service", "anon", "expected"),
    [
        (key("anon"), key("service_role"), {"SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_ANON_KEY"}),
        ("sb_publishable_abc123", "sb_secret_abc123", {"SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_ANON_KEY"}),
        ("sb_secret_abc123", "sb_publishable_abc123", set()),
        (key("service_role", exp=int(time.time()) - 60), key("anon"), {"SUPABASE_SERVICE_ROLE_KEY"}),
        ("not-a-key-at-all", key("anon"), {"SUPABASE_SERVICE_ROLE_KEY"}),
    ],
    ids=["swapped-jwts", "swapped-new-keys", "new-keys", "expired", "garbage"],
)
def test_keys_must_carry_their_role(service: str, anon: str, expected: set[str]) -> None:
    report = check_settings(good(supabase_service_role_key=service, supabase_anon_key=anon))

    assert set(failed(report.checks)) == expected
    swapped = len(expected) == 2
    assert all(check.fix.startswith("swapped with") == swapped for check in report.checks if not check.ok)


def test_an_origin_with_a_path_is_not_an_origin() -> None:
    report = check_settings(good(allowed_origins='["https://app.example.com/"]'))

    [line] = [check.line() for check in report.checks if not check.ok]
    assert line.startswith('❌ ALLOWED_ORIGINS: "https://app.example.com/" is not an origin (scheme://host[:port]')


def test_telegram_enabled_without_a_token_names_the_token() -> None:
    report = check_settings(good(telegram_enabled="true"))

    assert failed(report.checks) == {"TELEGRAM_BOT_TOKEN": "is required when TELEGRAM_ENABLED is true"}


def test_no_line_shows_a_secret_value() -> None:
    values = good(
        supabase_service_role_key="eyJ.not-a-real-service-key-value",
        secret_key="tiny-secret",
        telegram_bot_token="12345:short",
        database_url="postgres://postgres:db-password-123@db/postgres",
    )

    text = render_text(check_settings(values).checks)

    for secret in ("not-a-real-service-key-value", "tiny-secret", "12345:short", "db-password-123"):
        assert secret not in text


def test_the_environment_wins_over_the_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / "deploy.env"
    env_file.write_text("SECRET_KEY=from-the-file\nREDIS_URL=redis://file:6379/0\n", encoding="utf-8")
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    monkeypatch.delenv("REDIS_URL", raising=False)

    values = read_values(env_file)

    assert values["secret_key"] == "from-the-environment"
    assert values["redis_url"] == "redis://file:6379/0"
