"""GoTrue's two error shapes: ``HTTPError`` (``code``/``error_code``/``msg``) and the OAuth2 ``OAuthError``.

Sources: internal/api/apierrors/apierrors.go (the types), errorcode.go (the codes) and errors.go
(``HandleResponseError``: with ``X-Supabase-Api-Version: 2024-01-01`` the body is
``{"code": <error_code>, "message": ...}`` instead).
"""

from __future__ import annotations

from typing import Any


class AuthError(Exception):
    """An answer GoTrue gives as ``HTTPError``; ``extra`` adds fields such as ``weak_password``."""

    def __init__(self, status: int, code: str, msg: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg
        self.extra = extra or {}


class OAuthError(Exception):
    """GoTrue's OAuth2-style error (always 400): ``{"error": ..., "error_description": ...}``."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def bad_request(code: str, msg: str) -> AuthError:
    return AuthError(400, code, msg)


def forbidden(code: str, msg: str) -> AuthError:
    return AuthError(403, code, msg)


def not_found(code: str, msg: str) -> AuthError:
    return AuthError(404, code, msg)


def unprocessable(code: str, msg: str) -> AuthError:
    return AuthError(422, code, msg)


def weak_password(min_length: int) -> AuthError:
    # WeakPasswordError in internal/api/password.go; the only check the double makes is the length.
    message = f"Password should be at least {min_length} characters."
    return AuthError(422, "weak_password", message, {"weak_password": {"reasons": ["length"]}})


def not_implemented(what: str) -> AuthError:
    """Something GoTrue does that the local double does not (it sends no email or SMS, for one)."""
    return AuthError(501, "not_implemented", f"The local stack's Auth does not implement {what}")


INVALID_CREDENTIALS = "Invalid login credentials"


def rate_limited() -> AuthError:
    return AuthError(429, "over_request_rate_limit", "Request rate limit reached")
