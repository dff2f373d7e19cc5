"""What every Auth endpoint shares: settings, the JWT secret and issuer, the brake and the pool."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
from starlette.requests import Request

from .ratelimit import FailedSignIns
from .settings import AuthSettings

DEFAULT_AUD = "authenticated"  # GOTRUE_JWT_AUD
ADMIN_ROLES = ("service_role", "supabase_admin")  # GOTRUE_JWT_ADMIN_ROLES


@dataclass
class AuthContext:
    secret: str
    issuer: str
    settings: AuthSettings
    admin_dsn: str
    limiter: FailedSignIns = field(init=False)
    _pool: asyncpg.Pool | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.limiter = FailedSignIns(s.failed_signins_per_email, s.failed_signins_per_address, s.failed_signins_window)

    async def open(self) -> None:
        # GoTrue connects as supabase_auth_admin, the owner of auth's tables; so does this double.
        self._pool = await asyncpg.create_pool(
            self.admin_dsn, min_size=1, max_size=5, init=_as_auth_admin, reset=_end_transaction
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the Auth component has not been started")
        return self._pool


def request_aud(request: Request) -> str:
    """``requestAud``: the ``X-JWT-AUD`` header, or the configured audience."""
    return request.headers.get("x-jwt-aud") or DEFAULT_AUD


async def _as_auth_admin(conn: asyncpg.Connection) -> None:
    await conn.execute("set role supabase_auth_admin; set search_path = auth")


async def _end_transaction(conn: asyncpg.Connection) -> None:
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")
