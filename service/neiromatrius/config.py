"""Settings: the only reader of the environment (and of ``.env`` for local work)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ConfigError

BOT_TOKEN_VARIABLE = "TELEGRAM_BOT_TOKEN"
# Read in this order, later files over earlier ones and the environment over both: `.env` is yours,
# `.env.local` is written by `neiromatrius devstack` (the local stack's URL, keys and a SECRET_KEY).
ENV_FILES = (".env", ".env.local")
DEFAULT_CATEGORIES = (
    "sales",
    "pricing",
    "order_status",
    "technical_support",
    "billing",
    "refund",
    "complaint",
    "feedback",
    "greeting",
    "other",
)


def _split_list(value: Any) -> Any:
    """A JSON array (``["a","b"]``) or a comma-separated string (``a, b``)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [part.strip() for part in text.split(",") if part.strip()]


class Settings(BaseSettings):
    # Compose passes an unset ${VAR:-} as an empty string: that means "not set", not "set to nothing".
    model_config = SettingsConfigDict(env_file=ENV_FILES, extra="ignore", frozen=True, env_ignore_empty=True)

    supabase_url: str = Field(pattern=r"^https?://")
    supabase_service_role_key: SecretStr
    supabase_anon_key: SecretStr | None = None
    database_url: str | None = Field(default=None, pattern=r"^postgresql\+asyncpg://")

    openai_api_key: SecretStr | None = None
    openai_base_url: str = Field(default="https://api.openai.com/v1", pattern=r"^https?://")
    openai_model: str = "gpt-4o-mini"
    openai_timeout_seconds: float = Field(default=30.0, gt=0)
    openai_max_retries: int = Field(default=3, ge=0, le=10)
    openai_max_completion_tokens: int = Field(default=800, ge=64)

    secret_key: SecretStr
    webhook_secret: SecretStr | None = None  # whsec_<base64>; derived from SECRET_KEY when unset
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_url: str | None = None
    telegram_bot_token: SecretStr | None = None
    telegram_enabled: bool = False
    # Telegram echoes this in X-Telegram-Bot-Api-Secret-Token; derived from SECRET_KEY when unset.
    telegram_webhook_secret: SecretStr | None = None
    telegram_api_url: str = Field(default="https://api.telegram.org", pattern=r"^https?://")

    # Token buckets on intake: each holds a minute's allowance and refills evenly; 0 turns one off.
    rate_limit_client_per_minute: int = Field(default=120, ge=0)
    rate_limit_chat_per_minute: int = Field(default=30, ge=0)

    metrics_token: SecretStr | None = None  # when set, /metrics wants "Authorization: Bearer <token>"
    listener_metrics_host: str = "127.0.0.1"
    listener_metrics_port: int = Field(default=9464, ge=0, le=65535)  # /metrics and /health; 0 = off

    # The pool under supabase-py's and OpenAI's requests: aiohttp's costs a quarter of httpx's CPU
    # under concurrency (encode/httpx#3215). Webhook delivery always uses httpx's (its SSRF pinning).
    http_transport: Literal["aiohttp", "httpx"] = "aiohttp"

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    intake_api_key: SecretStr | None = None
    reply_wait_seconds: float = Field(default=25.0, ge=0, le=120)
    max_content_chars: int = Field(default=4000, ge=1)
    max_body_bytes: int = Field(default=65536, ge=1024)
    allow_private_webhooks: bool = False

    categories: Annotated[tuple[str, ...], NoDecode] = DEFAULT_CATEGORIES
    context_max_messages: int = Field(default=20, ge=1)
    context_max_tokens: int = Field(default=2000, ge=100)

    listener_concurrency: int = Field(default=4, ge=1, le=256)
    lease_seconds: float = Field(default=60.0, gt=0)
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    shutdown_grace_seconds: float = Field(default=8.0, ge=0)  # to finish claimed work on SIGTERM

    webhook_timeout_seconds: float = Field(default=15.0, gt=0)
    delivery_poll_seconds: float = Field(default=1.0, gt=0)  # how soon a due retry is noticed
    # Delays before each retry, after the first (immediate) attempt: Svix's production schedule.
    webhook_retry_schedule: Annotated[tuple[float, ...], NoDecode] = (5, 300, 1800, 7200, 18000, 36000, 36000)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("categories", mode="before")
    @classmethod
    def _categories(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _schedule(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("secret_key")
    @classmethod
    def _secret_long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("whsec_"):
            raise ValueError("must start with whsec_ (Standard Webhooks secret format)")
        return value

    @field_validator("categories")
    @classmethod
    def _categories_valid(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or len(set(value)) != len(value):
            raise ValueError("must be a non-empty list without repeats")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(redis|rediss|unix)://", value):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value or None

    @field_validator("telegram_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,100}", value.get_secret_value()):
            raise ValueError("must look like 123456789:AA... (the token @BotFather gives)")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _telegram_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("must be 1-256 characters from A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        return value

    @model_validator(mode="after")
    def _telegram_needs_token(self) -> Settings:
        if self.telegram_enabled and self.telegram_bot_token is None:
            raise ValueError(f"{BOT_TOKEN_VARIABLE}: is required when TELEGRAM_ENABLED is true")
        return self

    def telegram_secret(self) -> str:
        """The webhook secret token Telegram sends back: the setting, or one derived from ``SECRET_KEY``."""
        if self.telegram_webhook_secret is not None:
            return self.telegram_webhook_secret.get_secret_value()
        return self.derived_secret("telegram-webhook").hex()

    def prompt_canary(self) -> str:
        """This deployment's marker in the system prompt: a reply that carries it has leaked the prompt.

        Derived from ``SECRET_KEY``: unique to the deployment and absent from the source, so it never
        turns up in ordinary text; one-way, so a leaked canary reveals nothing of the key.
        """
        return "nm-canary-" + self.derived_secret("prompt-canary").hex()[:20]

    def derived_secret(self, purpose: str) -> bytes:
        """A key for one purpose, derived from ``SECRET_KEY`` so one secret serves them all."""
        return hmac.new(self.secret_key.get_secret_value().encode(), purpose.encode(), hashlib.sha256).digest()


def load_settings(**overrides: Any) -> Settings:
    """Read the environment; a wrong value becomes one ``ConfigError`` naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise describe(exc.errors()[0]) from None


def describe(error: ErrorDetails) -> ConfigError:
    """One validation error as a ``ConfigError`` naming its variable (never echoing the value)."""
    variable = str(error["loc"][0]).upper() if error["loc"] else "settings"
    message = "is required" if error["type"] == "missing" else error["msg"].removeprefix("Value error, ")
    if not error["loc"] and ": " in message:  # a rule across settings names its variable first
        variable, message = message.split(": ", 1)
    return ConfigError(variable, message)
