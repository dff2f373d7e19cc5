"""Who is asking: the role and the claims from ``Authorization: Bearer``, as PostgREST's Auth.hs does."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ..jwt import CLOCK_SKEW_SECONDS, TokenError, verify
from .errors import RestError


@dataclass(frozen=True)
class Identity:
    role: str
    claims_json: str
    authed: bool  # decides 401 (anon) versus 403 on insufficient_privilege
    expires: float | None = None


class Authenticator:
    """Verifies tokens, remembering recent good ones (each token is checked once, its ``exp`` each time)."""

    def __init__(self, secret: str, anon_role: str, cache_size: int = 1024) -> None:
        self.secret = secret
        self.anon_role = anon_role
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Identity] = OrderedDict()
        self.anonymous = Identity(anon_role, json.dumps({"role": anon_role}), authed=False)

    def identify(self, authorization: str | None) -> Identity:
        token = _bearer(authorization)
        if token is None:
            return self.anonymous
        cached = self._cache.get(token)
        if cached is not None and (cached.expires is None or time.time() < cached.expires + CLOCK_SKEW_SECONDS):
            return cached
        identity = self._verify(token)
        self._cache[token] = identity
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return identity

    def _verify(self, token: str) -> Identity:
        try:
            claims: dict[str, Any] = verify(token, self.secret)
        except TokenError as exc:
            raise jwt_error(exc.message) from exc
        role = claims.get("role")
        if not isinstance(role, str) or not role:
            role = self.anon_role
        claims["role"] = role
        exp = claims.get("exp")
        expires = float(exp) if isinstance(exp, int | float) else None
        text = json.dumps(claims, ensure_ascii=False, separators=(",", ":"))
        return Identity(role, text, authed=role != self.anon_role, expires=expires)


def _bearer(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def jwt_error(message: str) -> RestError:
    description = message.replace('"', "'")
    return RestError(
        401, "PGRST301", message,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'},
    )  # fmt: skip
