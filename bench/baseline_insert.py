"""The baseline for REST inserts: a bare Starlette endpoint doing one asyncpg INSERT.

Run as ``python bench/baseline_insert.py DSN PORT``; it serves ``POST /insert`` on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def build(dsn: str) -> Starlette:
    pool: asyncpg.Pool | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=10, max_size=20)
        yield
        await pool.close()

    async def insert(request: Request) -> Response:
        body = await request.json()
        assert pool is not None
        row = await pool.fetchrow("insert into public.bench_items(note) values ($1) returning id", body["note"])
        assert row is not None
        return Response(json.dumps([{"id": row["id"], "note": body["note"]}]), 201, media_type="application/json")

    return Starlette(routes=[Route("/insert", insert, methods=["POST"])], lifespan=lifespan)


if __name__ == "__main__":
    uvicorn.run(build(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
