"""The intake key: a bearer token every caller of the message endpoints shows, when one is configured."""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers

from ..config import Settings
from ..errors import Unauthorized


def intake_key(settings: Settings) -> bytes | None:
    """The configured key, or None when the endpoints are open (an empty value counts as unset)."""
    if settings.intake_api_key is None:
        return None
    return settings.intake_api_key.get_secret_value().encode() or None


def require_intake_key(headers: Headers, key: bytes | None) -> None:
    require_bearer(headers, key)


def require_bearer(headers: Headers, key: bytes | None) -> None:
    """Raise ``Unauthorized`` unless ``Authorization: Bearer <key>`` is sent (nothing to check without a key)."""
    if key is None:
        return
    scheme, _, token = headers.get("authorization", "").partition(" ")
    # compare_digest takes as long for a wrong key as for a right one, so the key cannot be guessed bytewise.
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key):
        raise Unauthorized("Authorization", "a valid bearer token is required")
