"""Sessions and their refresh-token chains in auth.sessions / auth.refresh_tokens / auth.mfa_amr_claims.

GoTrue's models: ``GrantAuthenticatedUser`` and ``GrantRefreshTokenSwap`` (refresh_token.go),
``FindCurrentlyActiveRefreshToken``, ``Logout``/``LogoutSession``/``LogoutAllExceptMe``
(sessions.go), ``RevokeTokenFamily``, ``AddClaimToSession`` and ``CalculateAALAndAMR`` (amr.go).
Deleting a session deletes its refresh tokens and amr claims by the foreign keys' cascade.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from .tokens import refresh_token
from .users import NIL_UUID, Conn


@dataclass(frozen=True)
class Client:
    """What GoTrue records of the caller on a session (``GrantParams.FillGrantParams``)."""

    user_agent: str | None
    ip: str | None


async def grant(conn: Conn, user_id: uuid.UUID, client: Client, method: str) -> tuple[uuid.UUID, str]:
    """A new session with its first refresh token and an amr claim; also stamps ``last_sign_in_at``."""
    session_id = uuid.uuid4()
    await conn.execute(
        "insert into auth.sessions (id, user_id, created_at, updated_at, aal, user_agent, ip)"
        " values ($1, $2, now(), now(), 'aal1', $3, $4::inet)",
        session_id, user_id, client.user_agent, client.ip or None,
    )  # fmt: skip
    token = await _insert_token(conn, user_id, session_id, parent=None)
    await conn.execute(
        "insert into auth.mfa_amr_claims (id, session_id, created_at, updated_at, authentication_method)"
        " values ($1, $2, now(), now(), $3) on conflict (session_id, authentication_method)"
        " do update set updated_at = excluded.updated_at",
        uuid.uuid4(), session_id, method,
    )  # fmt: skip
    await conn.execute("update auth.users set last_sign_in_at = now(), updated_at = now() where id = $1", user_id)
    return session_id, token


async def _insert_token(conn: Conn, user_id: uuid.UUID, session_id: uuid.UUID, parent: str | None) -> str:
    token = refresh_token()
    await conn.execute(
        "insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent,"
        " session_id) values ($1, $2, $3, false, now(), now(), $4, $5)",
        NIL_UUID, token, str(user_id), parent, session_id,
    )  # fmt: skip
    return token


async def swap(conn: Conn, token: asyncpg.Record) -> str:
    """Revoke ``token`` and issue its child in the same session (``GrantRefreshTokenSwap``)."""
    await conn.execute("update auth.refresh_tokens set revoked = true, updated_at = now() where id = $1", token["id"])
    return await _insert_token(conn, uuid.UUID(token["user_id"]), token["session_id"], parent=token["token"])


async def find_token(conn: Conn, token: str, *, for_update: bool = False) -> asyncpg.Record | None:
    """The refresh token row with its session's ``not_after`` (``FindUserWithRefreshToken``).

    ``for_update`` locks the session before the token, the order a logout takes them in (its delete of
    the session cascades to the tokens): the other order deadlocked a refresh against a logout."""
    lock = " for update of t" if for_update else ""
    if for_update:
        await conn.execute(
            "select from auth.sessions s where s.id = (select t.session_id from auth.refresh_tokens t"
            " where t.token = $1) for update of s",
            token,
        )
    return await conn.fetchrow(
        "select t.id, t.token, t.user_id, t.revoked, t.updated_at, t.parent, t.session_id,"
        " s.id is not null as has_session, s.not_after from auth.refresh_tokens t"
        f" left join auth.sessions s on s.id = t.session_id where t.token = $1{lock}",
        token,
    )


async def active_token(conn: Conn, session_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "select id, token, parent from auth.refresh_tokens where session_id = $1 and revoked = false"
        " order by id desc limit 1",
        session_id,
    )


async def revoke_family(conn: Conn, session_id: uuid.UUID) -> None:
    await conn.execute(
        "update auth.refresh_tokens set revoked = true, updated_at = now() where session_id = $1 and revoked = false",
        session_id,
    )


async def touch(conn: Conn, session_id: uuid.UUID, client: Client) -> None:
    """``UpdateOnlyRefreshInfo``: when and from where the session was last refreshed."""
    await conn.execute(
        "update auth.sessions set refreshed_at = timezone('utc', now()), user_agent = $2, ip = $3::inet,"
        " updated_at = now() where id = $1",
        session_id, client.user_agent, client.ip or None,
    )  # fmt: skip


async def exists(conn: Conn, session_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("select exists (select from auth.sessions where id = $1)", session_id))


async def amr(conn: Conn, session_id: uuid.UUID) -> list[dict[str, Any]]:
    """The ``amr`` claim: each method once, with the time it was last used, newest first."""
    rows = await conn.fetch(
        "select authentication_method, updated_at from auth.mfa_amr_claims where session_id = $1"
        " order by updated_at desc",
        session_id,
    )
    return [{"method": r["authentication_method"], "timestamp": _unix(r["updated_at"])} for r in rows]


def _unix(value: datetime) -> int:
    return int(value.timestamp())


async def logout(conn: Conn, user_id: uuid.UUID, scope: str, session_id: uuid.UUID | None) -> None:
    """``global``: every session of the user; ``local``: this one; ``others``: all but this one."""
    if scope == "local" and session_id is not None:
        await conn.execute("delete from auth.sessions where id = $1", session_id)
    elif scope == "others" and session_id is not None:
        await conn.execute("delete from auth.sessions where user_id = $1 and id <> $2", user_id, session_id)
    else:
        await conn.execute("delete from auth.sessions where user_id = $1", user_id)
