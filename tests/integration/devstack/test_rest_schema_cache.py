"""The API follows DDL: new tables, columns, relationships and functions are served after a change.

PostgREST reloads its schema cache asynchronously (on ``NOTIFY pgrst``), so each step waits,
with a bound, for the API to serve the new shape; the local stack usually serves it at once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import httpx
import pytest

from tests.conftest import Stack

BOUND_SECONDS = 15.0


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"apikey": stack.service_key, "Authorization": f"Bearer {stack.service_key}"}
    async with httpx.AsyncClient(base_url=f"{stack.url}/rest/v1", headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def until(request: Callable[[], Awaitable[httpx.Response]], status: int) -> httpx.Response:
    """Repeat ``request`` until it answers ``status`` (the schema cache has caught up), within a bound."""
    deadline = time.monotonic() + BOUND_SECONDS
    while True:
        response = await request()
        if response.status_code == status or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.05)  # poll interval while the cache reloads, not a synchronisation point


async def test_tables_columns_relationships_and_functions_appear_after_ddl(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    name = f"rest_ddl_{uuid.uuid4().hex[:10]}"
    child = f"{name}_child"
    try:
        await db.execute(f"create table public.{name} (id int primary key, label text)")
        await db.execute(f"grant all on public.{name} to anon, authenticated, service_role")
        created = await until(lambda: api.post(f"/{name}", json={"id": 1, "label": "one"}), 201)
        assert created.status_code == 201, created.text

        await db.execute(f"alter table public.{name} add column extra text")
        extended = await until(lambda: api.post(f"/{name}", json={"id": 2, "extra": "new"}), 201)
        assert extended.status_code == 201, extended.text

        await db.execute(f"create table public.{child} (id int primary key, parent int references public.{name}(id))")
        await db.execute(f"grant all on public.{child} to anon, authenticated, service_role")
        await db.execute(f"insert into public.{child} values (10, 1)")
        embedded = await until(lambda: api.get(f"/{name}", params={"select": f"id,{child}(id)", "id": "eq.1"}), 200)
        assert embedded.json() == [{"id": 1, child: [{"id": 10}]}]

        await db.execute(f"create function public.{name}_twice(x int) returns int language sql as 'select 2 * x'")
        await db.execute(f"grant execute on function public.{name}_twice(int) to anon, authenticated, service_role")
        called = await until(lambda: api.post(f"/rpc/{name}_twice", json={"x": 21}), 200)
        assert called.json() == 42
    finally:
        await db.execute(f"drop function if exists public.{name}_twice(int)")
        await db.execute(f"drop table if exists public.{child}, public.{name}")
