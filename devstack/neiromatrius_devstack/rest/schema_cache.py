"""Keep the catalogue fresh: load at start, reload on ``NOTIFY pgrst, 'reload schema'``, and on a miss.

PostgREST reloads only on the notification. A lookup that misses here also triggers one reload
first, so a request that races the notification right after DDL still sees the new table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

import asyncpg

from .catalog import Catalog
from .catalog_load import load_catalog

log = logging.getLogger(__name__)

CHANNEL = "pgrst"
_RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)


class SchemaCache:
    def __init__(self, admin_dsn: str, schemas: Sequence[str]) -> None:
        self.admin_dsn = admin_dsn
        self.schemas = tuple(schemas)
        self.catalog = Catalog()
        self.loads = 0
        self._conn: asyncpg.Connection | None = None
        self._stale = False
        self._task: asyncio.Task[None] | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        self._closing = False
        await self._connect()
        await self.refresh()

    async def stop(self) -> None:
        self._closing = True
        for task in (self._task, self._reconnect):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def refresh(self) -> Catalog:
        """Reload now (or join the reload in flight) and return the fresh catalogue."""
        self._stale = True
        await asyncio.shield(self._ensure_task())
        return self.catalog

    def _ensure_task(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._reload_while_stale())
        return self._task

    async def _reload_while_stale(self) -> None:
        while self._stale and not self._closing:
            self._stale = False
            started = time.perf_counter()
            try:
                self.catalog = await self._load()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("schema cache reload failed: %s", exc)
                return
            self.loads += 1
            log.debug("schema cache loaded in %.1f ms", (time.perf_counter() - started) * 1000)

    async def _load(self) -> Catalog:
        """Use the listening connection when it is up, else a short-lived one."""
        if self._conn is not None and not self._conn.is_closed():
            return await load_catalog(self._conn, self.schemas, self.catalog.timezones)
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            return await load_catalog(conn, self.schemas, self.catalog.timezones)
        finally:
            await conn.close()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        await conn.add_listener(CHANNEL, self._on_notify)
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        if payload in ("", "reload schema"):
            self._stale = True
            self._ensure_task()

    def _on_terminated(self, _conn: object) -> None:
        if not self._closing and (self._reconnect is None or self._reconnect.done()):
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        for attempt in range(10_000):
            delay = _RECONNECT_DELAYS[min(attempt, len(_RECONNECT_DELAYS) - 1)]
            await asyncio.sleep(delay)  # back off between attempts while the database is away
            try:
                await self._connect()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("schema cache listener reconnect failed: %s", exc)
                continue
            # Notifications sent while we were away are lost, so reload once.
            self._stale = True
            self._ensure_task()
            return
