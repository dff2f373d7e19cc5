"""Settings: what the environment may say, and the one-line error naming a wrong variable."""

from __future__ import annotations

from typing import Any

import pytest

from neiromatrius.config import DEFAULT_CATEGORIES, Settings, load_settings
from neiromatrius.errors import ConfigError

REQUIRED = {"SUPABASE_URL": "http://127.0.0.1:54321", "SUPABASE_SERVICE_ROLE_KEY": "key", "SECRET_KEY": "s" * 32}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in (
        "ALLOWED_ORIGINS",
        "CATEGORIES",
        "WEBHOOK_RETRY_SCHEDULE",
        "WEBHOOK_SECRET",
        "OPENAI_API_KEY",
        "BURST_WINDOW_MS",
    ):
        monkeypatch.delenv(name, raising=False)

    def set_env(**values: str) -> Settings:
        for name, value in (REQUIRED | values).items():
            monkeypatch.setenv(name, value)
        return load_settings(_env_file=None)

    return set_env


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('["https://a.example", "https://b.example"]', ["https://a.example", "https://b.example"]),
        ("https://a.example, https://b.example", ["https://a.example", "https://b.example"]),
        ("https://a.example", ["https://a.example"]),
        ("", []),
    ],
)
def test_allowed_origins_is_a_json_array_or_comma_separated(env: Any, raw: str, expected: list[str]) -> None:
    assert env(ALLOWED_ORIGINS=raw).allowed_origins == expected


def test_lists_of_categories_and_retry_delays_come_from_the_environment(env: Any) -> None:
    settings = env(CATEGORIES="sales,support,other", WEBHOOK_RETRY_SCHEDULE="[0.5, 5, 60]")
    assert settings.categories == ("sales", "support", "other")
    assert settings.webhook_retry_schedule == (0.5, 5.0, 60.0)


def test_defaults_suit_a_sales_and_support_inbox(env: Any) -> None:
    settings = env()
    assert settings.categories == DEFAULT_CATEGORIES
    assert (settings.max_content_chars, settings.max_body_bytes, settings.allow_private_webhooks) == (
        4000,
        65536,
        False,
    )


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"SECRET_KEY": "too-short"}, "SECRET_KEY"),
        ({"SUPABASE_URL": "ftp://example.com"}, "SUPABASE_URL"),
        ({"DATABASE_URL": "postgresql://postgres@db/postgres"}, "DATABASE_URL"),
        ({"ALLOWED_ORIGINS": "[not json"}, "ALLOWED_ORIGINS"),
        ({"WEBHOOK_SECRET": "plain-secret"}, "WEBHOOK_SECRET"),
        ({"CATEGORIES": "a,a"}, "CATEGORIES"),
        ({"API_PORT": "eighty"}, "API_PORT"),
        ({"LISTENER_CONCURRENCY": "0"}, "LISTENER_CONCURRENCY"),
    ],
)
def test_a_wrong_value_is_one_error_naming_the_variable(env: Any, values: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as error:
        env(**values)
    assert error.value.variable == variable
    assert error.value.message.startswith(f"{variable}: ")
    assert "\n" not in error.value.message


def test_a_missing_required_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in REQUIRED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SUPABASE_URL", "http://127.0.0.1:54321")
    monkeypatch.setenv("SECRET_KEY", "s" * 32)
    with pytest.raises(ConfigError) as error:
        load_settings(_env_file=None)
    assert error.value.message == "SUPABASE_SERVICE_ROLE_KEY: is required"


def test_derived_secrets_differ_by_purpose_and_follow_the_secret_key(env: Any) -> None:
    one = env()
    other = env(SECRET_KEY="t" * 32)
    assert one.derived_secret("webhook-signing") != one.derived_secret("openai-safety-identifier")
    assert one.derived_secret("webhook-signing") == env().derived_secret("webhook-signing")
    assert one.derived_secret("webhook-signing") != other.derived_secret("webhook-signing")


def test_secrets_do_not_show_in_the_settings_repr(env: Any) -> None:
    settings = env(OPENAI_API_KEY="sk-very-secret")
    assert "sk-very-secret" not in repr(settings)
    assert "s" * 32 not in repr(settings)


def test_settings_read_env_then_env_local_and_the_environment_over_both(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (*REQUIRED, "OPENAI_MODEL", "API_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("OPENAI_MODEL=from-dotenv\nAPI_PORT=8100\nSECRET_KEY=" + "e" * 32 + "\n")
    local = "\n".join(f"{name}={value}" for name, value in REQUIRED.items())
    (tmp_path / ".env.local").write_text(local + "\nAPI_PORT=8200\n")
    monkeypatch.setenv("OPENAI_MODEL", "from-environment")

    settings = load_settings()

    assert settings.supabase_url == REQUIRED["SUPABASE_URL"]  # only in .env.local
    assert settings.secret_key.get_secret_value() == "s" * 32  # .env.local over .env
    assert settings.api_port == 8200
    assert settings.openai_model == "from-environment"  # the environment over both files


@pytest.mark.parametrize(
    ("raw", "windows"),
    [
        (None, {"telegram": 2000}),  # the default: Telegram waits 2 s of quiet; other platforms not coalesced
        ("telegram=2500, web=100", {"telegram": 2500, "web": 100}),
        ("telegram=2500,*=300", {"*": 300, "telegram": 2500}),
        ("750", {"*": 750}),
        ('{"telegram": 10}', {"telegram": 10}),
    ],
)
def test_burst_windows_per_platform_with_a_default_for_the_rest(
    env: Any, raw: str | None, windows: dict[str, int]
) -> None:
    settings = env(**({} if raw is None else {"BURST_WINDOW_MS": raw}))
    assert settings.burst_window_ms == windows


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("telegram=", "BURST_WINDOW_MS: 'telegram=' is not platform=milliseconds"),
        ("telegram=60001", "BURST_WINDOW_MS: telegram: 60001 ms is outside 0..60000"),
        ("-1", "BURST_WINDOW_MS: *: -1 ms is outside 0..60000"),
    ],
)
def test_a_malformed_burst_window_is_named(env: Any, raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        env(BURST_WINDOW_MS=raw)
    assert error.value.message == message
