"""The one error tree of the service. Adapters translate vendor exceptions into it (``raise ... from exc``).

NeiromatriusError
├── ConfigError                 a setting is missing or malformed (start-up stops, naming it)
├── InputError                  a request is malformed; ``field`` names what is wrong (4xx)
│   ├── PayloadTooLarge         the body is over the limit (413)
│   ├── HeadersTooLarge         the request's headers are over the limit (431)
│   ├── Unauthorized            the intake key is missing or wrong (401)
│   ├── IdempotencyConflict     the key was used before with another body (422)
│   └── AlreadyExists           what was to be created is there already (an operator's email)
├── NotFound                    no such message (404), no such operator
├── RateLimited                 over a client's or a chat's rate limit (429 with Retry-After)
├── CacheUnavailable            Redis does not answer (in time); rate limits fall back to memory
├── StoreError                  Supabase (PostgREST/Realtime/Auth) failed; retryable when it is down
│   └── StoreUnavailable        the database or the API in front of it does not answer (503)
├── LeaseLost                   the message is no longer ours to finish (another worker took it)
├── ResponderError              the model failed
│   ├── ModelQuotaExceeded      insufficient_quota: needs account action, never retried
│   └── ModelUnavailable        429/5xx/timeouts after the configured retries
├── UnusableAnswer              the model answered, but not in a form that may be sent (refusal,
│                               truncated, invalid JSON or schema): the message goes to a human
├── DeliveryError               a reply could not be delivered
│   └── BlockedDestination      the URL points somewhere we never connect to (SSRF)
└── TelegramError               the Bot API refused a call or did not answer; retryable on 429/5xx/network
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .core.models import Usage


class NeiromatriusError(Exception):
    retryable: bool = False
    code: str = "error"

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable


class ConfigError(NeiromatriusError):
    code = "invalid_setting"

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class InputError(NeiromatriusError):
    code = "invalid_request"
    status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class MalformedBody(InputError):
    code = "malformed_body"
    status = 400


class UnsupportedMediaType(InputError):
    code = "unsupported_media_type"
    status = 415


class PayloadTooLarge(InputError):
    code = "payload_too_large"
    status = 413


class HeadersTooLarge(InputError):
    code = "headers_too_large"
    status = 431


class Unauthorized(InputError):
    code = "unauthorized"
    status = 401


class IdempotencyConflict(InputError):
    code = "idempotency_key_reused"
    status = 422


class AlreadyExists(InputError):
    code = "already_exists"
    status = 409


class NotFound(NeiromatriusError):
    code = "not_found"


class RateLimited(NeiromatriusError):
    code = "rate_limited"
    status = 429

    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__(f"Too many messages for this {scope}; retry in {retry_after} s.")
        self.scope = scope
        self.retry_after = retry_after  # whole seconds, at least 1


class CacheUnavailable(NeiromatriusError):
    code = "cache_unavailable"
    retryable = True


class StoreError(NeiromatriusError):
    code = "store_error"


class StoreUnavailable(StoreError):
    code = "database_unavailable"
    retryable = True


class LeaseLost(NeiromatriusError):
    code = "lease_lost"


class ResponderError(NeiromatriusError):
    code = "model_error"


class ModelQuotaExceeded(ResponderError):
    code = "insufficient_quota"


class ModelUnavailable(ResponderError):
    code = "model_unavailable"
    retryable = True


class UnusableAnswer(NeiromatriusError):
    code = "unusable_answer"
    usage: Usage | None = None  # what the call cost, when the model did answer


class DeliveryError(NeiromatriusError):
    code = "delivery_error"


class BlockedDestination(DeliveryError):
    code = "blocked_destination"


class TelegramError(NeiromatriusError):
    """A Bot API call failed. Never carries the request URL: it holds the bot token."""

    code = "telegram_error"

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None, retryable: bool
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.status = status
        self.retry_after = retry_after
