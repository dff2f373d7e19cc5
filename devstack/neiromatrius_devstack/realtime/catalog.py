"""What the dispatcher learns about a published table from the catalogue, cached per Relation message.

pgoutput re-sends a table's Relation message after anything that invalidates its relcache (DDL,
GRANT/REVOKE, ENABLE ROW LEVEL SECURITY), so keying the cache on the message's generation keeps
it exact without polling. Reads run on the ``authenticator`` pool: the catalogue is world-readable.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from .pgoutput import Relation

#: A pooled or plain connection.
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_COLUMNS = """
select a.attname, t.typname, format_type(a.atttypid, a.atttypmod) as sql_type,
       coalesce(a.attnum = any(i.indkey), false) as is_pk
from pg_attribute a
join pg_type t on t.oid = a.atttypid
left join pg_index i on i.indrelid = a.attrelid and i.indisprimary
where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped
order by a.attnum
"""
_RLS = "select relrowsecurity from pg_class where oid = $1"
_READABLE = """
select coalesce(array_agg(a.attname order by a.attnum), '{}')
from pg_attribute a
where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped
  and has_column_privilege($2, a.attrelid, a.attnum, 'SELECT')
"""
# Asked as the role itself (``current_user``): whether row-level security is off for it on this table
# (BYPASSRLS, a superuser, or the owner of a table without FORCE ROW LEVEL SECURITY: Postgres's own
# ``check_enable_rls``) and whether it may run the RLS check's query at all (schema usage, SELECT on the key).
_SEES_EVERY_ROW = """
select not row_security_active(c.oid)
   and has_schema_privilege(c.relnamespace, 'USAGE')
   and (select coalesce(bool_and(has_column_privilege(c.oid, a.attnum, 'SELECT')), false)
        from pg_attribute a where a.attrelid = c.oid and a.attname = any($2::text[]) and not a.attisdropped)
from pg_class c where c.oid = $1
"""


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    typname: str  # pg_type.typname: what Realtime reports in ``columns[].type``
    sql_type: str  # format_type(): what values are cast to


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    columns: tuple[ColumnInfo, ...]  # in attnum order
    primary_key: tuple[str, ...]
    rls: bool

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Catalog:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._tables: dict[int, tuple[int, TableInfo]] = {}
        self._readable: dict[tuple[int, int, str], frozenset[str]] = {}
        self._sees_every_row: dict[tuple[int, int, str], bool] = {}

    async def table(self, relation: Relation) -> TableInfo:
        cached = self._tables.get(relation.oid)
        if cached is not None and cached[0] == relation.generation:
            return cached[1]
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(_COLUMNS, relation.oid)
            rls = bool(await conn.fetchval(_RLS, relation.oid))
        info = TableInfo(
            relation.schema,
            relation.name,
            tuple(ColumnInfo(r["attname"], r["typname"], r["sql_type"]) for r in rows),
            tuple(r["attname"] for r in rows if r["is_pk"]),
            rls,
        )
        self._tables[relation.oid] = (relation.generation, info)
        self._readable = {
            k: v for k, v in self._readable.items() if k[0] != relation.oid or k[1] == relation.generation
        }
        self._sees_every_row = {
            k: v for k, v in self._sees_every_row.items() if k[0] != relation.oid or k[1] == relation.generation
        }
        return info

    async def readable(self, relation: Relation, role: str) -> frozenset[str]:
        """The columns ``role`` may SELECT (none for a role that does not exist)."""
        key = (relation.oid, relation.generation, role)
        cached = self._readable.get(key)
        if cached is None:
            try:
                names = await self.pool.fetchval(_READABLE, relation.oid, role)
            except asyncpg.UndefinedObjectError:
                names = []
            cached = self._readable[key] = frozenset(names)
        return cached

    async def sees_every_row(self, relation: Relation, table: TableInfo, role: str) -> bool:
        """Whether ``role`` reads every row of the table: RLS does not apply to it, and it may read the key.

        For such a role the RLS check (``rls.row_visible``) could only ask whether the row exists, so a
        changed row it was sent is visible to it (false for an unknown role, or one the pool cannot become).
        """
        key = (relation.oid, relation.generation, role)
        cached = self._sees_every_row.get(key)
        if cached is None:
            cached = self._sees_every_row[key] = await self._ask_sees_every_row(relation.oid, table, role)
        return cached

    async def _ask_sees_every_row(self, oid: int, table: TableInfo, role: str) -> bool:
        if not table.primary_key or "\x00" in role:
            return False
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute("select set_config('role', $1, true)", role)
                return bool(await conn.fetchval(_SEES_EVERY_ROW, oid, list(table.primary_key)))
        except asyncpg.PostgresError:  # an unknown role, or one this connection may not become
            return False
