"""Access and refresh tokens as GoTrue issues and checks them.

Claims and their order: ``AccessTokenClaims`` in internal/api/token.go (``generateAccessToken``).
Checks: ``parseJWTClaims`` in internal/api/auth.go (golang-jwt v5, HS256 only here, no leeway);
the error texts after "invalid JWT: unable to parse or verify signature, " are golang-jwt's.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from typing import Any

import jwt as pyjwt

from .errors import AuthError, forbidden

VALID_METHODS = ("HS256",)
_BEARER = re.compile(r"^(?:B|b)earer (\S+)$")
_REFRESH_ALPHABET = string.ascii_lowercase + string.digits


def access_token(
    secret: str, issuer: str, user: dict[str, Any], session_id: str, amr: list[dict[str, Any]], lifetime: int
) -> tuple[str, int]:
    """The signed token and its ``exp``; ``user`` is the row of auth.users with decoded metadata."""
    issued = int(time.time())
    expires = issued + lifetime
    claims = {
        "iss": issuer,
        "sub": str(user["id"]),
        "aud": user["aud"] or "",
        "exp": expires,
        "iat": issued,
        "email": user["email"] or "",
        "phone": user["phone"] or "",
        "app_metadata": user["app_metadata"],
        "user_metadata": user["user_metadata"],
        "role": user["role"] or "",
        "aal": "aal1",
        "amr": amr,
        "session_id": session_id,
        "is_anonymous": bool(user["is_anonymous"]),
    }
    return pyjwt.encode(claims, secret, algorithm="HS256"), expires


def refresh_token() -> str:
    """``crypto.SecureAlphanumeric(12)``: the classic opaque refresh token."""
    return "".join(secrets.choice(_REFRESH_ALPHABET) for _ in range(12))


def bearer(authorization: str | None) -> str:
    """``extractBearerToken``: 401 ``no_authorization`` without ``Authorization: Bearer <token>``."""
    match = _BEARER.match(authorization or "")
    if match is None:
        raise AuthError(401, "no_authorization", "This endpoint requires a Bearer token")
    return match.group(1)


def parse(token: str, secret: str) -> dict[str, Any]:
    """The claims of a token GoTrue accepts, or 403 ``bad_jwt`` with golang-jwt's reason."""
    try:
        header = pyjwt.get_unverified_header(token)
    except pyjwt.DecodeError as exc:
        raise _bad_jwt(f"token is malformed: {exc}") from exc
    alg = header.get("alg")
    if alg not in VALID_METHODS:
        raise _bad_jwt(f"token signature is invalid: signing method {alg} is invalid")
    try:
        claims: dict[str, Any] = pyjwt.decode(
            token, secret, algorithms=list(VALID_METHODS),
            options={"verify_aud": False, "verify_iat": False, "require": []},
        )  # fmt: skip
    except pyjwt.ExpiredSignatureError as exc:
        raise _bad_jwt("token has invalid claims: token is expired") from exc
    except pyjwt.ImmatureSignatureError as exc:
        raise _bad_jwt("token has invalid claims: token is not valid yet") from exc
    except pyjwt.InvalidSignatureError as exc:
        raise _bad_jwt("token signature is invalid: signature is invalid") from exc
    except pyjwt.PyJWTError as exc:
        raise _bad_jwt(f"token is malformed: {exc}") from exc
    return claims


def _bad_jwt(reason: str) -> AuthError:
    return forbidden("bad_jwt", f"invalid JWT: unable to parse or verify signature, {reason}")
