"""Who is calling: ``requireAuthentication`` and ``requireAdmin`` (supabase/auth internal/api/auth.go)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from . import sessions, tokens, users
from .context import ADMIN_ROLES, AuthContext
from .errors import bad_request, forbidden
from .users import NIL_UUID, Conn


@dataclass(frozen=True)
class Caller:
    claims: dict[str, Any]
    user: dict[str, Any]
    session_id: uuid.UUID | None


async def require_user(request: Request, auth: AuthContext, conn: Conn) -> Caller:
    """A valid user token whose user and session still exist (``maybeLoadUserOrSession``)."""
    claims = tokens.parse(tokens.bearer(request.headers.get("authorization")), auth.secret)
    sub = claims.get("sub")
    if not sub:
        raise forbidden("bad_jwt", "invalid claim: missing sub claim")
    user_id = _uuid(sub)
    if user_id is None:
        raise bad_request("bad_jwt", "invalid claim: sub claim must be a UUID")
    user = await users.find_by_id(conn, user_id)
    if user is None:
        raise forbidden("user_not_found", "User from sub claim in JWT does not exist")
    session_id = None
    raw_session = claims.get("session_id")
    if raw_session and raw_session != str(NIL_UUID):
        session_id = _uuid(raw_session)
        if session_id is None:
            raise forbidden("bad_jwt", "invalid claim: session_id claim must be a UUID")
        if not await sessions.exists(conn, session_id):
            raise forbidden("session_not_found", "Session from session_id claim in JWT does not exist")
    return Caller(claims, user, session_id)


def require_admin(request: Request, auth: AuthContext) -> dict[str, Any]:
    """A valid token whose ``role`` is an admin role (the service_role key is one)."""
    claims = tokens.parse(tokens.bearer(request.headers.get("authorization")), auth.secret)
    if claims.get("role") not in ADMIN_ROLES:
        raise forbidden("not_admin", "User not allowed")
    return claims


def _uuid(value: object) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
