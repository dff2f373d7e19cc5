"""HS256 tokens the way Supabase signs and checks them (anon, service_role and user tokens)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt as pyjwt

#: PostgREST allows this much clock skew when it checks ``exp``.
CLOCK_SKEW_SECONDS = 30
#: Keys minted for the local stack are valid for ten years, like Supabase's own.
KEY_LIFETIME_SECONDS = 10 * 365 * 24 * 3600


class TokenError(Exception):
    """A token that does not verify. ``expired`` tells the two cases clients distinguish."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.expired = expired


def sign(claims: dict[str, Any], secret: str) -> str:
    return pyjwt.encode(claims, secret, algorithm="HS256")


def verify(token: str, secret: str) -> dict[str, Any]:
    """Return the claims of a valid HS256 token, or raise :class:`TokenError`."""
    try:
        claims: dict[str, Any] = pyjwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            leeway=CLOCK_SKEW_SECONDS,
            options={"verify_aud": False, "require": []},
        )
    except pyjwt.ExpiredSignatureError as exc:
        raise TokenError("JWT expired", expired=True) from exc
    except pyjwt.InvalidSignatureError as exc:
        raise TokenError("JWSError JWSInvalidSignature") from exc
    except pyjwt.PyJWTError as exc:
        raise TokenError(f"JWSError {type(exc).__name__}: {exc}") from exc
    return claims


def api_key(role: str, secret: str, *, now: int | None = None) -> str:
    """An anon or service_role key shaped like Supabase's (``iss``, ``role``, ``iat``, ``exp``)."""
    issued = int(time.time()) if now is None else now
    return sign({"iss": "supabase-demo", "role": role, "iat": issued, "exp": issued + KEY_LIFETIME_SECONDS}, secret)


def user_token(
    secret: str,
    *,
    sub: str | None = None,
    email: str | None = None,
    role: str = "authenticated",
    lifetime: int = 3600,
    extra: dict[str, Any] | None = None,
) -> str:
    """A GoTrue-shaped access token minted directly (no sign-in through /auth/v1), for tests and local tools."""
    issued = int(time.time())
    claims: dict[str, Any] = {
        "aud": "authenticated",
        "sub": sub or str(uuid.uuid4()),
        "role": role,
        "email": email,
        "iat": issued,
        "exp": issued + lifetime,
        "app_metadata": {},
        "user_metadata": {},
        "is_anonymous": False,
    }
    claims.update(extra or {})
    return sign(claims, secret)
