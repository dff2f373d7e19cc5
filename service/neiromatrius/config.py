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
# Marks a setting for local development only: the Compose files must not pass it (tests/unit/deploy).
LOCAL_DEVELOPMENT_ONLY: dict[str, Any] = {"local_development_only": True}
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

    supabase_url: str = Field(
        pattern=r"^https?://", description="Supabase's URL: the service works through its PostgREST and Realtime"
    )
    supabase_service_role_key: SecretStr = Field(description="the service_role key (never leaves the Python processes)")
    supabase_anon_key: SecretStr | None = Field(
        default=None, description="the anon key; for `neiromatrius check`, not needed by the service"
    )
    database_url: str | None = Field(
        default=None,
        pattern=r"^postgresql\+asyncpg://",
        description="`postgresql+asyncpg://…`; for `neiromatrius check` (connection, migrations), not the service",
    )

    openai_api_key: SecretStr | None = Field(
        default=None, description="OpenAI's key; without it the listener answers with the offline rules model"
    )
    openai_base_url: str = Field(
        default="https://api.openai.com/v1", pattern=r"^https?://", description="OpenAI's (or a compatible) API"
    )
    openai_model: str = Field(default="gpt-4o-mini", description="the model that classifies and answers")
    openai_timeout_seconds: float = Field(default=30.0, gt=0, description="bound on one OpenAI request")
    openai_max_retries: int = Field(
        default=3, ge=0, le=10, description="retries on 429 and 5xx, with backoff honouring `retry-after`"
    )
    openai_max_completion_tokens: int = Field(default=800, ge=64, description="cap on one answer's tokens")

    secret_key: SecretStr = Field(
        description="32+ characters; the webhook signing key, the Telegram secret and the prompt canary derive from it"
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="`whsec_<base64>` Standard Webhooks secret; derived from SECRET_KEY when unset"
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="CORS origins, a JSON array or comma-separated; none by default"
    )
    redis_url: str | None = Field(
        default=None,
        description="`redis://`, `rediss://` or `unix://`: the rate limits shared between API replicas (never logged)",
    )
    telegram_bot_token: SecretStr | None = Field(
        default=None, description="the bot's token from @BotFather; the listener sends Telegram replies when set"
    )
    telegram_enabled: bool = Field(default=False, description="serve `POST /api/telegram/webhook`")
    telegram_webhook_secret: SecretStr | None = Field(
        default=None,
        description="what Telegram echoes in `X-Telegram-Bot-Api-Secret-Token`; derived from SECRET_KEY when unset",
    )
    telegram_api_url: str = Field(
        default="https://api.telegram.org", pattern=r"^https?://", description="the Bot API's address"
    )

    # Token buckets on intake: each holds a minute's allowance and refills evenly; 0 turns one off.
    rate_limit_client_per_minute: int = Field(
        default=120, ge=0, description="intake token bucket per `client_id`; 0 turns it off"
    )
    rate_limit_chat_per_minute: int = Field(
        default=30, ge=0, description="intake token bucket per client, platform and chat; 0 turns it off"
    )

    metrics_token: SecretStr | None = Field(
        default=None, description="when set, `/metrics` wants `Authorization: Bearer <token>`"
    )
    listener_metrics_host: str = Field(default="127.0.0.1", description="where the listener serves /metrics, /health")
    listener_metrics_port: int = Field(
        default=9464, ge=0, le=65535, description="the listener's /metrics and /health port; 0 turns them off"
    )

    # The pool under every outbound request: aiohttp's costs a quarter of httpx's CPU under concurrency
    # (encode/httpx#3215; httpcore polls each idle connection's socket on every request).
    http_transport: Literal["aiohttp", "httpx"] = Field(
        default="aiohttp",
        description="the pool under Supabase, OpenAI, Telegram and webhook calls (`aiohttp` or `httpx`)",
    )

    api_host: str = Field(default="127.0.0.1", description="the API's address; `0.0.0.0` in a container")
    api_port: int = Field(default=8000, ge=1, le=65535, description="the API's port")
    intake_api_key: SecretStr | None = Field(
        default=None, description="when set, intake wants `Authorization: Bearer <key>`"
    )
    reply_wait_seconds: float = Field(
        default=25.0, ge=0, le=120, description="how long `POST /api/messages/` waits for the reply before a 202"
    )
    max_content_chars: int = Field(default=4000, ge=1, description="longest message `content`, in characters")
    max_body_bytes: int = Field(default=65536, ge=1024, description="largest request body (413 above)")
    allow_private_webhooks: bool = Field(
        default=False, description="allow every loopback and private webhook URL (local development only)"
    )
    webhook_allow_local: str | None = Field(
        default=None,
        pattern=r"^http://(127\.0\.0\.1|\[::1\]):[0-9]{1,5}$",
        description="ONE loopback origin (`http://127.0.0.1:PORT`) let through the SSRF guard; `neiromatrius run` "
        "sets it for its webhook inbox",
        json_schema_extra=LOCAL_DEVELOPMENT_ONLY,
    )

    categories: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_CATEGORIES,
        description="the categories the model may choose until the listener has read the `categories` table "
        "(which admins edit), JSON array or comma-separated",
    )
    # Quick lines of one conversation answered by one model call, on the platforms named here. Telegram:
    # people send one thought as several short messages a second or two apart, so it waits for 2 s of quiet.
    # The HTTP intake is not named: its callers often relay one message per request and wait for that
    # message's own answer. `*` names every other platform.
    burst_window_ms: Annotated[dict[str, int], NoDecode] = Field(
        default={"telegram": 2000},
        description="per platform, the quiet time (ms) after which a conversation's quick messages are answered "
        "together: `telegram=2000,web=1500`; `*=N` for every other platform, one number for all; a platform not "
        "named gets one answer per message",
    )
    context_max_messages: int = Field(default=20, ge=1, description="how many earlier messages the model sees")
    context_max_tokens: int = Field(default=2000, ge=100, description="token budget for those earlier messages")

    listener_concurrency: int = Field(default=4, ge=1, le=256, description="messages one listener works on at once")
    lease_seconds: float = Field(
        default=60.0, gt=0, description="how long a claim holds; an expired lease is taken over"
    )
    sweep_interval_seconds: float = Field(
        default=5.0, gt=0, description="how often the listener looks for pending rows and expired leases"
    )
    max_attempts: int = Field(default=3, ge=1, description="claims of one message before it fails")
    shutdown_grace_seconds: float = Field(
        default=8.0, ge=0, description="on SIGTERM, how long the listener finishes claimed work"
    )

    webhook_timeout_seconds: float = Field(default=15.0, gt=0, description="bound on one webhook attempt")
    delivery_poll_seconds: float = Field(default=1.0, gt=0, description="how soon a due delivery retry is noticed")
    # Delays before each retry, after the first (immediate) attempt: Svix's production schedule.
    webhook_retry_schedule: Annotated[tuple[float, ...], NoDecode] = Field(
        default=(5, 300, 1800, 7200, 18000, 36000, 36000),
        description="seconds before each retry after the first attempt (Svix's schedule)",
    )

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("categories", mode="before")
    @classmethod
    def _categories(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("burst_window_ms", mode="before")
    @classmethod
    def _burst_windows(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("{"):
            return json.loads(text)
        if "=" not in text:
            return {"*": text}
        windows: dict[str, str] = {}
        for part in filter(None, (piece.strip() for piece in text.split(","))):
            platform, _, window = part.partition("=")
            if not platform.strip() or not window.strip():
                raise ValueError(f"{part!r} is not platform=milliseconds")
            windows[platform.strip()] = window.strip()
        return windows

    @field_validator("burst_window_ms")
    @classmethod
    def _burst_windows_valid(cls, value: dict[str, int]) -> dict[str, int]:
        for platform, window in value.items():
            if not 0 <= window <= 60_000:
                raise ValueError(f"{platform}: {window} ms is outside 0..60000")
        return value

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
