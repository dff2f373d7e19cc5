"""Apply ``supabase/migrations/*.sql`` in order and record them like the Supabase CLI does.

The CLI keeps its history in ``supabase_migrations.schema_migrations(version, statements, name)``,
where ``version`` is the file name's timestamp and ``name`` the rest; recording the same rows
makes ``supabase migration list --db-url …`` agree with what the local stack applied.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

FILE_NAME = re.compile(r"^(?P<version>\d+)_(?P<name>.+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def discover(directory: Path) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")) if directory.is_dir() else []:
        match = FILE_NAME.match(path.name)
        if match is None:
            log.warning("skipping %s: migration files are named <timestamp>_<name>.sql", path.name)
            continue
        found.append(Migration(match["version"], match["name"], path))
    return sorted(found, key=lambda m: m.version)


def split_statements(sql: str) -> list[str]:
    """Split a script on top-level semicolons, respecting quotes, dollar quotes and comments."""
    statements: list[str] = []
    start = i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch in ("'", '"'):
            end = i + 1
            while end < n:
                if sql[end] == ch and sql.startswith(ch * 2, end):
                    end += 2
                elif sql[end] == ch:
                    break
                else:
                    end += 1
            i = end + 1
        elif ch == "$" and (tag := re.match(r"\$[A-Za-z_]*\$", sql[i:])):
            end = sql.find(tag.group(0), i + len(tag.group(0)))
            i = n if end < 0 else end + len(tag.group(0))
        elif ch == ";":
            statements.append(sql[start : i + 1].strip())
            start = i = i + 1
        else:
            i += 1
    if sql[start:].strip():
        statements.append(sql[start:].strip())
    return [s for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    without_comments = re.sub(r"--[^\n]*|/\*.*?\*/", "", statement, flags=re.S)
    return bool(without_comments.strip(" \n\t;"))


async def applied_versions(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("select version from supabase_migrations.schema_migrations")
    return {row["version"] for row in rows}


async def apply(conn: asyncpg.Connection, directory: Path) -> list[Migration]:
    """Apply the migrations not yet recorded, each in its own transaction; return those applied."""
    done = await applied_versions(conn)
    applied = []
    for migration in discover(directory):
        if migration.version in done:
            continue
        statements = split_statements(migration.sql)
        async with conn.transaction():
            for statement in statements:
                await conn.execute(statement)
            await conn.execute(
                "insert into supabase_migrations.schema_migrations(version, statements, name) values ($1, $2, $3)",
                migration.version,
                statements,
                migration.name,
            )
        log.info("applied migration %s_%s", migration.version, migration.name)
        applied.append(migration)
    return applied
