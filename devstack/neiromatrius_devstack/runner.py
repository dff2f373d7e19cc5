"""Start the local stack: Postgres (embedded or given), bootstrap, migrations, then the gateway."""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import uvicorn

from . import bootstrap, migrations, state
from .auth.settings import AuthSettings
from .context import Keys, StackContext
from .gateway import build_gateway
from .postgres import EmbeddedPostgres

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StackOptions:
    port: int = 54321
    db_port: int = 54322
    host: str = "127.0.0.1"
    data_dir: Path = Path(".devstack")
    env_file: Path | None = Path(".env.local")
    migrations_dir: Path = Path("supabase/migrations")
    fresh: bool = False
    database_url: str | None = None
    auth: AuthSettings = field(default_factory=AuthSettings)
    #: PostgREST's ``db-aggregates-enabled`` / ``db-plan-enabled``; Supabase leaves both off.
    aggregates_enabled: bool = False
    plan_enabled: bool = False
    seed_file: Path | None = None  # applied once, when this start created the data folder (`supabase db reset`'s seed)


@dataclass(frozen=True)
class StackEndpoints:
    url: str
    anon_key: str
    service_role_key: str
    jwt_secret: str
    database_url: str  # postgresql+asyncpg://…, the checklist's form
    secret_key: str  # the service's SECRET_KEY, so the env file is all `neiromatrius api` needs

    def env(self) -> dict[str, str]:
        return {
            "SUPABASE_URL": self.url,
            "SUPABASE_ANON_KEY": self.anon_key,
            "SUPABASE_SERVICE_ROLE_KEY": self.service_role_key,
            "SUPABASE_JWT_SECRET": self.jwt_secret,
            "DATABASE_URL": self.database_url,
            "SECRET_KEY": self.secret_key,
        }


def plain_dsn(url: str) -> str:
    """``postgresql+asyncpg://…`` → ``postgresql://…``, the form asyncpg and libpq accept."""
    return url.replace("+asyncpg", "", 1)


def _with_user(dsn: str, user: str, password: str) -> str:
    parts = urlsplit(dsn)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def write_env_file(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by `neiromatrius devstack`: the local stack's endpoints and keys, and a SECRET_KEY for the service.",
        "# `neiromatrius api`, `listener` and `check` read it after .env (docs/operations.md): no copying needed.",
    ]
    lines += [f"{key}={value}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)


class LocalStack:
    """Owns what it started: the embedded Postgres (unless ``database_url`` names another one)."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.data_dir = options.data_dir.resolve()
        self.postgres: EmbeddedPostgres | None = None
        self.created = False  # whether this start made the data folder: only then is the seed applied

    def prepare(self) -> tuple[state.StackSecrets, str]:
        """Start Postgres if it is ours; return the secrets and a superuser DSN."""
        if self.options.fresh and self.data_dir.exists():
            if self.options.database_url is None:
                EmbeddedPostgres(self.data_dir / "pg", self.options.db_port).stop()
            shutil.rmtree(self.data_dir)
        self.created = state.load(self.data_dir) is None
        secrets = state.load_or_create(self.data_dir)
        if self.options.database_url is not None:
            return secrets, plain_dsn(self.options.database_url)
        self.postgres = EmbeddedPostgres(self.data_dir / "pg", self.options.db_port)
        self.postgres.init(secrets.postgres_password)
        self.postgres.start()
        password = quote(secrets.postgres_password, safe="")
        dsn = f"postgresql://postgres:{password}@127.0.0.1:{self.options.db_port}/postgres"
        return secrets, dsn

    async def migrate(self, admin_dsn: str, secrets: state.StackSecrets) -> list[migrations.Migration]:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await bootstrap.bootstrap(conn, secrets.authenticator_password)
            applied = await migrations.apply(conn, self.options.migrations_dir)
            if self.created and self.options.seed_file is not None:
                await conn.execute(self.options.seed_file.read_text(encoding="utf-8"))
                log.info("seed applied: %s", self.options.seed_file)
            return applied
        finally:
            await conn.close()

    def endpoints(self, secrets: state.StackSecrets, admin_dsn: str) -> StackEndpoints:
        return StackEndpoints(
            url=f"http://{self.options.host}:{self.options.port}",
            anon_key=secrets.anon_key,
            service_role_key=secrets.service_role_key,
            jwt_secret=secrets.jwt_secret,
            database_url=admin_dsn.replace("postgresql://", "postgresql+asyncpg://", 1),
            secret_key=state.service_secret_key(self.data_dir),
        )

    async def serve(self) -> None:
        # uvicorn handles SIGTERM while it serves and re-raises it once it has shut down; a Python
        # handler turns that (and a SIGTERM during start-up) into SystemExit, so the cleanup runs.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        secrets, admin_dsn = self.prepare()
        try:
            applied = await self.migrate(admin_dsn, secrets)
            log.info("migrations applied this start: %d", len(applied))
            from . import auth, realtime, rest

            auth_dsn = _with_user(admin_dsn, "authenticator", secrets.authenticator_password)
            pool = await self.request_pool(auth_dsn)
            keys = Keys(secrets.jwt_secret, secrets.anon_key, secrets.service_role_key)
            ctx = StackContext(
                keys=keys,
                pool=pool,
                admin_dsn=admin_dsn,
                aggregates_enabled=self.options.aggregates_enabled,
                plan_enabled=self.options.plan_enabled,
            )
            endpoints = self.endpoints(secrets, admin_dsn)
            gotrue = auth.create(ctx, self.options.auth, issuer=f"{endpoints.url}/auth/v1")
            app = build_gateway(keys, rest.create(ctx), realtime.create(ctx), gotrue)
            if self.options.env_file is not None:
                write_env_file(self.options.env_file, endpoints.env())
            config = uvicorn.Config(
                app, host=self.options.host, port=self.options.port, ws="websockets-sansio",
                lifespan="on", log_level="warning", access_log=False, timeout_graceful_shutdown=5,
                ws_per_message_deflate=False,  # Realtime's Phoenix endpoint compresses no frame
            )  # fmt: skip
            try:
                await _AnnouncingServer(config, endpoints, self.options.env_file).serve()
            finally:
                await pool.close()
        finally:
            self.shutdown()

    async def request_pool(self, auth_dsn: str) -> asyncpg.Pool:
        """Our own cluster is reached through its Unix socket: the same server with less kernel work per
        round trip than loopback TCP, and a request makes three. TCP when there is no socket to use."""
        if self.postgres is not None:
            try:
                return await request_pool(auth_dsn, host=str(self.postgres.socket_dir), port=self.postgres.port)
            except OSError as exc:  # e.g. a socket path past the system's length limit: Postgres made none
                log.info("PostgreSQL's Unix socket is not usable (%s): requests go over TCP", exc)
        return await request_pool(auth_dsn)

    def shutdown(self) -> None:
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None


async def request_pool(dsn: str, *, min_size: int = 2, max_size: int = 20, **connect: Any) -> asyncpg.Pool:
    """The pool every REST request and Realtime check runs on (as ``authenticator``); ``connect`` overrides
    the DSN's connection arguments (``host``, ``port``)."""
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, reset=_end_transaction, **connect)


async def _end_transaction(conn: asyncpg.Connection) -> None:
    """The request pool's reset: requests only set transaction-local state, so ending an open
    transaction is all a returned connection needs (asyncpg's full reset costs a round trip).
    PostgREST's pool (hasql-pool) runs no reset either: what a function sets for the session stays on its connection."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


class _AnnouncingServer(uvicorn.Server):
    """Print the endpoints only once the port accepts connections, so scripts can wait on it."""

    def __init__(self, config: uvicorn.Config, endpoints: StackEndpoints, env_file: Path | None) -> None:
        super().__init__(config)
        self.endpoints = endpoints
        self.env_file = env_file

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print_banner(self.endpoints, self.env_file)


def print_banner(endpoints: StackEndpoints, env_file: Path | None) -> None:
    out = sys.stdout
    out.write("Local Supabase stack\n")
    out.write(f"  API URL           {endpoints.url}  (/rest/v1, /realtime/v1, /auth/v1)\n")
    out.write(f"  anon key          {endpoints.anon_key}\n")
    out.write(f"  service_role key  {endpoints.service_role_key}\n")
    out.write(f"  JWT secret        {endpoints.jwt_secret}\n")
    out.write(f"  DATABASE_URL      {endpoints.database_url}\n")
    if env_file is not None:
        out.write(f"  written to        {env_file}\n")
    out.write("Ready. Ctrl-C stops it.\n")
    out.flush()
