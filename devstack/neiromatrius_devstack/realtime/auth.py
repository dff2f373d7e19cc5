"""Realtime's token rules: an HS256 JWT with ``role`` and ``exp``, checked without clock leeway.

This differs from PostgREST's check (30 s leeway, ``exp`` optional), hence not ``devstack.jwt.verify``.
Messages are Realtime's (``channels_authorization.ex``, ``realtime_channel.ex``).
"""

from __future__ import annotations

import time
from typing import Any

import jwt as pyjwt


class AuthError(Exception):
    """``code`` prefixes the reason of a refused join: ``"<code>: <message>"``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.message}"


def verify(token: str | None, secret: str) -> dict[str, Any]:
    """The claims of a token Realtime accepts, or :class:`AuthError`."""
    if not token:
        raise AuthError("InvalidJWTToken", "API key is missing")
    try:
        claims: dict[str, Any] = pyjwt.decode(
            token,
            secret,
            algorithms=["HS256", "HS384", "HS512"],
            options={"verify_exp": False, "verify_aud": False, "verify_iat": False, "verify_nbf": False},
        )
    except pyjwt.InvalidSignatureError as exc:
        raise AuthError("JwtSignatureError", "Failed to validate JWT signature") from exc
    except pyjwt.PyJWTError as exc:
        raise AuthError("MalformedJWT", "The token provided is not a valid JWT") from exc
    exp = claims.get("exp")
    if not isinstance(claims.get("role"), str) or not isinstance(exp, int | float):
        raise AuthError("InvalidJWTToken", "Fields `role` and `exp` are required in JWT")
    remaining = int(exp) - int(time.time())
    if remaining <= 0:
        raise AuthError("InvalidJWTToken", f"Token has expired {-remaining} seconds ago")
    return claims


def seconds_left(claims: dict[str, Any]) -> float:
    return float(claims["exp"]) - time.time()
