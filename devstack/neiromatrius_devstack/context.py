"""What the gateway's parts share: keys, the request pool, and how to reach the database."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg


@dataclass(frozen=True)
class Keys:
    jwt_secret: str
    anon: str
    service_role: str

    def role_of(self, apikey: str) -> str | None:
        """The Kong consumer an API key belongs to, or ``None`` for an unknown key."""
        if apikey == self.anon:
            return "anon"
        if apikey == self.service_role:
            return "service_role"
        return None


@dataclass
class StackContext:
    """Built once by the runner and handed to the REST and Realtime components.

    ``pool`` connects as ``authenticator`` (LOGIN NOINHERIT, not a superuser), so every request
    must switch role inside its own transaction and RLS holds. ``admin_dsn`` is a superuser (or
    REPLICATION) DSN for catalogue reads and logical decoding; it never serves a request's query.
    """

    keys: Keys
    pool: asyncpg.Pool
    admin_dsn: str
    schemas: tuple[str, ...] = ("public",)
    anon_role: str = "anon"
    max_rows: int = 1000
    #: PostgREST's ``db-aggregates-enabled`` and ``db-plan-enabled``: off by default, as on Supabase.
    aggregates_enabled: bool = False
    plan_enabled: bool = False
    extras: dict[str, object] = field(default_factory=dict)
