"""Run one request's SQL in one transaction, the way PostgREST does (Query.hs ``setPgLocals``).

Three round trips besides the pool's own reset: ``BEGIN`` plus every ``set_config`` as one
simple-protocol script (constants only, written as escaped literals), the request's one
parameterised statement (a prepared statement asyncpg caches), then ``COMMIT`` or ``ROLLBACK``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Callable, Sequence

import asyncpg

from .catalog import Catalog, Relation
from .errors import RestError, connection_error, from_pg, pool_timeout
from .negotiation import Media
from .request import ApiRequest
from .schema_cache import SchemaCache
from .sqlfrag import ident, literal

log = logging.getLogger(__name__)

#: A check on the result row, run before commit; an error rolls the transaction back.
RowCheck = Callable[[asyncpg.Record], RestError | None]

ACQUIRE_TIMEOUT = 10.0


class Engine:
    """What every request needs: the schema cache, the request pool and the settings."""

    def __init__(
        self,
        cache: SchemaCache,
        pool: asyncpg.Pool,
        *,
        max_rows: int | None,
        allow_tx_override: bool = True,
        aggregates_enabled: bool = False,
        plan_enabled: bool = False,
    ) -> None:
        self.cache = cache
        self.pool = pool
        self.max_rows = max_rows
        self.allow_tx_override = allow_tx_override
        self.aggregates_enabled = aggregates_enabled
        self.plan_enabled = plan_enabled

    @property
    def catalog(self) -> Catalog:
        return self.cache.catalog

    async def relation(self, schema: str, name: str) -> Relation | None:
        rel = self.catalog.relation(schema, name)
        if rel is None:
            rel = (await self.cache.refresh()).relation(schema, name)
        return rel

    async def fresh(self) -> Catalog:
        return await self.cache.refresh()

    def begin_script(self, req: ApiRequest, *, read_only: bool) -> str:
        identity = req.identity
        role_settings = self.catalog.role_settings.get(identity.role, ())
        settings = [
            ("request.method", req.method),
            ("request.path", req.path),
            ("request.headers", req.headers_json()),
            ("request.cookies", req.cookies_json()),
        ]
        timezone = req.prefs.get("timezone")
        if timezone is not None and timezone in self.catalog.timezones:
            settings.append(("timezone", timezone))
        calls = ", ".join(f"set_config({_setting(k)}, {literal(v)}, true)" for k, v in settings)
        head = _script_head(req.schema, tuple(role_settings), identity.role, read_only)
        return f"{head}{_setting_call('request.jwt.claims', identity.claims_json)}, {calls}"

    def wants_rollback(self, req: ApiRequest) -> bool:
        return self.allow_tx_override and req.prefs.get("tx") == "rollback"

    async def run(
        self, req: ApiRequest, sql: str, args: Sequence[object], *, read_only: bool, check: RowCheck | None = None
    ) -> asyncpg.Record:
        """Execute ``sql`` in the request's transaction and return its one result row."""
        row, _ = await self.run_planned(req, sql, args, read_only=read_only, check=check)
        return row

    async def run_planned(
        self,
        req: ApiRequest,
        sql: str,
        args: Sequence[object],
        *,
        read_only: bool,
        check: RowCheck | None = None,
        explain: str | None = None,
    ) -> tuple[asyncpg.Record, int | None]:
        """Like :meth:`run`; ``explain`` (a ``SELECT`` over the same parameters) also gets the planner's
        row estimate, in the same transaction, as PostgREST's ``count=planned`` (``preparePlanRows``)."""
        script = self.begin_script(req, read_only=read_only)
        plan = req.media.media is Media.PLAN
        if plan:
            # ``Accept: application/vnd.pgrst.plan``: the statement's plan is the answer (db-plan-enabled).
            options = "".join(f", {o.upper()}" for o in req.media.plan_options)
            sql, check, explain = f"EXPLAIN (FORMAT {req.media.plan_format.upper()}{options}) {sql}", None, None
        try:
            # asyncio.timeout rather than acquire(timeout=…), which runs the acquisition in a task of its own.
            async with asyncio.timeout(ACQUIRE_TIMEOUT):
                conn = await self.pool.acquire()
        except TimeoutError as exc:
            raise pool_timeout() from exc
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # Failing to get a connection (even with a server error such as "shutting down") is PGRST000.
            raise connection_error(exc) from exc
        try:
            rollback = self.wants_rollback(req)
            return await self._in_transaction(conn, script, sql, args, check, rollback, explain, plan=plan)
        except asyncpg.PostgresError as exc:
            raise from_pg(exc, req.identity.authed) from exc
        except (OSError, asyncpg.InterfaceError) as exc:
            raise connection_error(exc) from exc
        finally:
            await self._release(conn)

    async def _release(self, conn: asyncpg.pool.PoolConnectionProxy) -> None:
        """Give the connection back; if its reset fails, asyncpg drops it, and the answer stands."""
        try:
            await self.pool.release(conn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.debug("dropped a connection whose reset failed: %s", exc)

    async def _in_transaction(
        self,
        conn: asyncpg.pool.PoolConnectionProxy,
        script: str,
        sql: str,
        args: Sequence[object],
        check: RowCheck | None,
        rollback: bool,
        explain: str | None,
        *,
        plan: bool = False,
    ) -> tuple[asyncpg.Record, int | None]:
        try:
            await conn.execute(script)
            if plan:
                lines = await conn.fetch(sql, *args)
                await conn.execute("ROLLBACK" if rollback else "COMMIT")
                raise PlanAnswer("\n".join(str(r[0]) for r in lines))
            row = await conn.fetchrow(sql, *args)
            if row is None:  # the outer SELECT aggregates, so it always yields a row
                raise RestError(500, "PGRSTX00", "The statement returned no result row")
            error = check(row) if check is not None else None
            if error is not None:
                await conn.execute("ROLLBACK")
                raise error
            planned = await _plan_rows(conn, explain, args) if explain is not None else None
            await conn.execute("ROLLBACK" if rollback else "COMMIT")
            return row, planned
        except BaseException:
            await _abandon(conn)
            raise


# The script's parts that repeat from one request to the next are escaped once, not per request.


@functools.lru_cache(maxsize=256)
def _script_head(schema: str, role_settings: tuple[tuple[str, str], ...], role: str, read_only: bool) -> str:
    """``BEGIN …; SELECT`` and the ``set_config`` calls before the claims: search path, the role's own
    settings (``ALTER ROLE … SET``) and the role itself."""
    settings = [("search_path", f"{ident(schema)}, {ident('public')}"), *role_settings, ("role", role)]
    mode = "READ ONLY" if read_only else "READ WRITE"
    return f"BEGIN ISOLATION LEVEL READ COMMITTED {mode}; SELECT " + "".join(
        f"{_setting_call(k, v)}, " for k, v in settings
    )


@functools.lru_cache(maxsize=1024)
def _setting_call(name: str, value: str) -> str:
    return f"set_config({literal(name)}, {literal(value)}, true)"


@functools.lru_cache(maxsize=64)
def _setting(name: str) -> str:
    return literal(name)


class PlanAnswer(Exception):
    """The plan of the request's statement, to be sent as the response body."""

    def __init__(self, body: str) -> None:
        super().__init__("plan")
        self.body = body


async def _plan_rows(conn: asyncpg.pool.PoolConnectionProxy, select: str, args: Sequence[object]) -> int:
    """``Plan Rows`` of the top plan node of ``EXPLAIN (FORMAT JSON) select``."""
    plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {select}", *args)
    parsed = json.loads(plan) if isinstance(plan, str) else plan
    return int(parsed[0]["Plan"]["Plan Rows"])


async def _abandon(conn: asyncpg.pool.PoolConnectionProxy) -> None:
    """End a failed transaction so the pool gets the connection back clean (or drops it)."""
    if conn.is_closed() or not conn.is_in_transaction():
        return
    try:
        await asyncio.shield(conn.execute("ROLLBACK"))
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.CancelledError):
        with contextlib.suppress(Exception):
            conn.terminate()
