"""A PostgREST v12-compatible REST API over the local database, for supabase-py and supabase-js.

Module map:

* request parsing: ``request`` (headers, JWT via ``auth``, ``negotiation``, ``preferences``),
  ``querystring`` with ``grammar``/``filter_grammar``/``select_grammar`` into ``model`` data,
  ``payload`` for JSON bodies;
* the schema cache: ``catalog`` (data), ``catalog_load`` (queries), ``view_keys`` (keys seen through
  views), ``schema_cache`` (reloads), ``relationships`` (embeds);
* SQL: ``sqlfrag`` (parameters, filters), ``sqlread``, ``sqlwrite``, ``sqlrpc``, ``sqlresult``;
* running and answering: ``engine`` (one transaction), ``read``/``write``/``rpc``, ``counting``
  (exact, planned, estimated totals), ``reply``, ``responses``, ``errors``; ``app`` routes.
"""

from __future__ import annotations

from starlette.types import ASGIApp

from ..component import Component
from ..context import StackContext
from .app import RestApp
from .auth import Authenticator
from .engine import Engine
from .schema_cache import SchemaCache


class RestComponent:
    """The REST side of the local stack; ``start`` loads the schema cache and listens for reloads."""

    def __init__(self, ctx: StackContext) -> None:
        self.cache = SchemaCache(ctx.admin_dsn, ctx.schemas)
        self.engine = Engine(
            self.cache,
            ctx.pool,
            max_rows=ctx.max_rows,
            aggregates_enabled=ctx.aggregates_enabled,
            plan_enabled=ctx.plan_enabled,
        )
        self.app: ASGIApp = RestApp(self.engine, Authenticator(ctx.keys.jwt_secret, ctx.anon_role), ctx.schemas)

    async def start(self) -> None:
        await self.cache.start()

    async def stop(self) -> None:
        await self.cache.stop()


def create(ctx: StackContext) -> Component:
    return RestComponent(ctx)


__all__ = ["RestComponent", "create"]
