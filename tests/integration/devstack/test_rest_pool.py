"""Nothing a request sets outlives it on the pooled connection the next request gets.

The request pool's reset only ends an open transaction (no ``RESET ALL`` round trip): the role, the
JWT claims, the request's headers and its ``Prefer: timezone`` are all ``set_config(…, true)``, gone at
``COMMIT`` or ``ROLLBACK``. Here the REST app runs in the test's process on a pool of one connection,
made as the stack makes its own, so every request reuses the same backend.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from neiromatrius_devstack import rest
from neiromatrius_devstack.context import Keys, StackContext
from neiromatrius_devstack.runner import request_pool
from tests.conftest import Stack

pytestmark = pytest.mark.local_only

#: The settings a request makes, read back on the connection between requests.
SESSION = """
select current_user as role, pg_backend_pid() as pid, current_setting('timezone') as timezone,
       current_setting('search_path') as search_path, current_setting('statement_timeout') as statement_timeout,
       current_setting('request.jwt.claims', true) as claims, current_setting('request.headers', true) as headers,
       current_setting('request.method', true) as method
"""


class OneConnection:
    def __init__(self, pool: asyncpg.Pool, client: httpx.AsyncClient, stack: Stack) -> None:
        self.pool = pool
        self.client = client
        self.stack = stack

    async def session(self) -> dict[str, Any]:
        row = await self.pool.fetchrow(SESSION)
        assert row is not None
        return dict(row)

    def user(self, sub: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.stack.user_token(sub)}"}


@pytest.fixture
async def one_connection(stack: Stack, db: asyncpg.Connection) -> AsyncIterator[OneConnection]:
    # A login role like ``authenticator`` (NOINHERIT, the API roles granted), whose password the test knows.
    role, password = f"rest_pool_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    await db.execute(f"create role {role} login noinherit password '{password}'")
    await db.execute(f"grant anon, authenticated, service_role to {role}")
    parts = urlsplit(stack.database_url)
    dsn = urlunsplit(parts._replace(netloc=f"{role}:{password}@{parts.hostname}:{parts.port}"))
    pool = await request_pool(dsn, min_size=1, max_size=1)
    keys = Keys(stack.jwt_secret, stack.anon_key, stack.service_key)
    component = rest.create(StackContext(keys=keys, pool=pool, admin_dsn=stack.database_url))
    await component.start()
    try:
        transport = httpx.ASGITransport(app=component.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rest") as client:
            yield OneConnection(pool, client, stack)
    finally:
        await component.stop()
        await pool.close()
        await db.execute(f"drop role {role}")


async def test_a_request_leaves_no_role_claims_or_settings_on_its_connection(one_connection: OneConnection) -> None:
    api, before = one_connection.client, await one_connection.session()
    sub = str(uuid.uuid4())
    headers = {**one_connection.user(sub), "X-Client-Info": "pool-test/1", "Prefer": "timezone=Asia/Tokyo"}
    as_user = await api.post("/rpc/rest_whoami", json={}, headers=headers)
    assert as_user.json() == {
        "role": "authenticated", "sub": sub, "method": "POST", "path": "/rpc/rest_whoami", "client": "pool-test/1"
    }  # fmt: skip
    after = await one_connection.session()
    assert (after["pid"], after["role"], after["timezone"]) == (before["pid"], before["role"], before["timezone"])
    assert (after["search_path"], after["statement_timeout"]) == (before["search_path"], before["statement_timeout"])
    assert not after["claims"] and not after["headers"] and not after["method"]  # '' once defined, never the last one's

    as_anon = await api.get("/rpc/rest_whoami")
    assert as_anon.json() == {"role": "anon", "sub": None, "method": "GET", "path": "/rpc/rest_whoami", "client": None}
    assert (await one_connection.session())["pid"] == before["pid"]  # the same connection served both


async def test_a_failed_request_leaves_nothing_behind_either(one_connection: OneConnection) -> None:
    api, before = one_connection.client, await one_connection.session()
    as_user = one_connection.user(str(uuid.uuid4()))
    failed = await api.post("/rpc/rest_fail", json={"msg": "on purpose"}, headers=as_user)
    assert failed.status_code == 400
    rolled_back = await api.post(
        "/rpc/rest_whoami", json={}, headers={**one_connection.user(str(uuid.uuid4())), "Prefer": "tx=rollback"}
    )
    assert rolled_back.json()["role"] == "authenticated"
    after = await one_connection.session()
    assert (after["pid"], after["role"], after["claims"] or None) == (before["pid"], before["role"], None)
    as_anon = await api.get("/rpc/rest_whoami")
    assert (as_anon.json()["role"], as_anon.json()["sub"]) == ("anon", None)
