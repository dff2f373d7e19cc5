"""Fixtures shared by every test tier.

``stack`` is the Supabase the tests talk to: the local stack started as a real process, or, when
``SUPABASE_URL``, ``SUPABASE_ANON_KEY``, ``SUPABASE_SERVICE_ROLE_KEY``, ``SUPABASE_JWT_SECRET`` and
``DATABASE_URL`` are set, that Supabase instead (the same tests run unchanged against it).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest

from neiromatrius_devstack.process import DevstackProcess
from tests.support.http_receiver import Receiver, Reply
from tests.support.operators import Operators
from tests.support.redis_server import RedisServer
from tests.support.waiting import blocking_eventually

SQL_DIR = Path(__file__).parent / "integration" / "devstack" / "sql"


@dataclass(frozen=True)
class Stack:
    url: str
    anon_key: str
    service_key: str
    jwt_secret: str
    database_url: str  # postgresql://…, for asyncpg
    local: bool

    def user_token(self, sub: str | None = None, email: str | None = None, lifetime: int = 3600) -> str:
        """A GoTrue-shaped access token for an authenticated user (no GoTrue needed)."""
        now = int(time.time())
        claims: dict[str, object] = {
            "aud": "authenticated",
            "sub": sub or str(uuid.uuid4()),
            "email": email,
            "role": "authenticated",
            "iat": now,
            "exp": now + lifetime,
            "app_metadata": {},
            "user_metadata": {},
            "is_anonymous": False,
        }
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")

    def sign(self, claims: dict[str, object]) -> str:
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")


LOCAL_ONLY_REASON = "local_only: needs the local stack's own processes or files; SUPABASE_URL points elsewhere"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Against a real Supabase, skip (visibly, with the reason) the tests that drive the local stack itself."""
    if not os.environ.get("SUPABASE_URL"):
        return
    for item in items:
        if item.get_closest_marker("local_only"):
            item.add_marker(pytest.mark.skip(reason=LOCAL_ONLY_REASON))


def _remote_stack() -> Stack | None:
    names = ("SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_JWT_SECRET", "DATABASE_URL")
    if not os.environ.get("SUPABASE_URL"):
        return None
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        raise pytest.UsageError(f"SUPABASE_URL is set, so these must be too: {', '.join(missing)}")
    env = os.environ
    return Stack(
        url=env["SUPABASE_URL"].rstrip("/"),
        anon_key=env["SUPABASE_ANON_KEY"],
        service_key=env["SUPABASE_SERVICE_ROLE_KEY"],
        jwt_secret=env["SUPABASE_JWT_SECRET"],
        database_url=env["DATABASE_URL"].replace("+asyncpg", "", 1),
        local=False,
    )


async def _apply_sql(database_url: str, files: list[Path]) -> list[str]:
    """Apply the tests' own tables; return the public tables, for the schema-cache wait."""
    conn = await asyncpg.connect(database_url)
    try:
        for path in files:
            await conn.execute(path.read_text(encoding="utf-8"))
        await conn.execute("notify pgrst, 'reload schema'")
        rows = await conn.fetch("select tablename from pg_tables where schemaname = 'public'")
        return [row["tablename"] for row in rows]
    finally:
        await conn.close()


def _wait_until_exposed(stack: Stack, tables: list[str], bound: float = 15.0) -> None:
    """PostgREST reloads its schema cache asynchronously after DDL: wait until it serves every table."""
    headers = {"apikey": stack.service_key, "Authorization": f"Bearer {stack.service_key}"}
    with httpx.Client(base_url=f"{stack.url}/rest/v1", headers=headers, timeout=5) as client:

        def exposed() -> bool:
            return all(client.get(f"/{table}", params={"limit": "0"}).status_code != 404 for table in tables)

        try:
            blocking_eventually(exposed, bound)
        except TimeoutError:
            raise RuntimeError(f"the REST API never exposed every one of {tables!r}") from None


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    remote = _remote_stack()
    process: DevstackProcess | None = None
    if remote is None:
        process = DevstackProcess(tmp_path_factory.mktemp("devstack") / "data")
        env = process.start()
        current = Stack(
            url=env["SUPABASE_URL"],
            anon_key=env["SUPABASE_ANON_KEY"],
            service_key=env["SUPABASE_SERVICE_ROLE_KEY"],
            jwt_secret=env["SUPABASE_JWT_SECRET"],
            database_url=env["DATABASE_URL"].replace("+asyncpg", "", 1),
            local=True,
        )
    else:
        current = remote
    tables = asyncio.run(_apply_sql(current.database_url, sorted(SQL_DIR.glob("*.sql"))))
    _wait_until_exposed(current, tables)
    try:
        yield current
    finally:
        if process is not None:
            process.stop()


@pytest.fixture(scope="session")
def supabase_cli() -> Path:
    """The Supabase CLI from npm (pinned), installed once into a cache folder the repo ignores."""
    root = Path(__file__).resolve().parents[1] / ".cache" / "supabase-cli"
    binary = root / "node_modules" / ".bin" / "supabase"
    if not binary.exists():
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(root), "supabase@2.117.0"],
            check=True, capture_output=True, timeout=240,
        )  # fmt: skip
    return binary


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to the stack's database, to look at rows as they really are."""
    conn = await asyncpg.connect(stack.database_url)
    yield conn
    await conn.close()


@pytest.fixture
async def operators(db: asyncpg.Connection) -> AsyncIterator[Operators]:
    """Auth users and operators rows made with SQL for this test; deleted (with their rows) after it."""
    made = Operators(db)
    yield made
    await made.cleanup()


MakeReceiver = Callable[..., Awaitable[Receiver]]


@pytest.fixture
async def receiver() -> AsyncIterator[MakeReceiver]:
    """Webhook receivers on 127.0.0.1, answering from a script (``Reply``s); closed after the test."""
    started: list[Receiver] = []

    async def make(*replies: Reply, keep_alive: bool = False, tls: ssl.SSLContext | None = None) -> Receiver:
        server = Receiver(list(replies) or [Reply()], keep_alive=keep_alive, tls=tls)
        await server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        await server.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server of this test's own (loopback, no persistence); it may kill and restart it."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()
