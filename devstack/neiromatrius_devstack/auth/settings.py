"""The Auth double's settings, named after GoTrue's own environment variables where GoTrue has one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class AuthSettings:
    #: GOTRUE_JWT_EXP: access token lifetime in seconds.
    jwt_exp: int = 3600
    #: GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL: seconds a revoked refresh token may still be exchanged.
    refresh_token_reuse_interval: int = 10
    #: GOTRUE_PASSWORD_MIN_LENGTH.
    password_min_length: int = 6
    #: Failed password sign-ins allowed per email address within the window, then 429 (not a GoTrue setting).
    failed_signins_per_email: int = 5
    #: Failed password sign-ins allowed per client address within the window, then 429 (not a GoTrue setting).
    failed_signins_per_address: int = 30
    #: The window of both counters, in seconds.
    failed_signins_window: int = 300

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AuthSettings:
        """Read the variables in :data:`ENV_NAMES`; a bad value raises ``ValueError`` naming the variable."""
        values: dict[str, int] = {}
        for field in fields(cls):
            name = ENV_NAMES[field.name]
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
            if value < 0 or (value == 0 and field.name not in ZERO_ALLOWED):
                raise ValueError(f"{name} must be {'0 or more' if field.name in ZERO_ALLOWED else 'positive'}")
            values[field.name] = value
        return cls(**values)


ENV_NAMES = {
    "jwt_exp": "GOTRUE_JWT_EXP",
    "refresh_token_reuse_interval": "GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL",
    "password_min_length": "GOTRUE_PASSWORD_MIN_LENGTH",
    "failed_signins_per_email": "DEVSTACK_AUTH_FAILED_SIGNINS_PER_EMAIL",
    "failed_signins_per_address": "DEVSTACK_AUTH_FAILED_SIGNINS_PER_ADDRESS",
    "failed_signins_window": "DEVSTACK_AUTH_FAILED_SIGNINS_WINDOW",
}
ZERO_ALLOWED = {"refresh_token_reuse_interval"}
