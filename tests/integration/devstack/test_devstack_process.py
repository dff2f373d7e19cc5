"""`neiromatrius devstack` as a user runs it: start, stop with SIGTERM, start again, `--fresh`."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from pathlib import Path

import asyncpg
import httpx
import pytest

from neiromatrius_devstack.postgres import EmbeddedPostgres
from neiromatrius_devstack.process import DevstackProcess, free_port

pytestmark = pytest.mark.local_only

MIGRATION = """-- a table and one row, so applying twice would show
create table public.survivor (id bigint primary key, note text not null);
insert into public.survivor values (1, 'from the migration');
"""


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def _checklist_connect(database_url: str) -> asyncpg.Connection:
    # The pre-deploy checklist's own test: strip +asyncpg and connect with asyncpg.
    assert database_url.startswith("postgresql+asyncpg://")
    return await asyncpg.connect(database_url.replace("+asyncpg", ""))


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "20260101000000_survivor.sql").write_text(MIGRATION)
    return directory


async def test_data_and_migrations_survive_a_restart(tmp_path: Path, migrations_dir: Path) -> None:
    stack = DevstackProcess(tmp_path / "data", migrations_dir=migrations_dir)
    env = stack.start()
    try:
        assert set(env) == {
            "SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_JWT_SECRET", "DATABASE_URL",
            "SECRET_KEY",  # the service's, so the file is all `neiromatrius api` needs
        }  # fmt: skip
        assert env["SUPABASE_URL"] == f"http://127.0.0.1:{stack.port}"
        conn = await _checklist_connect(env["DATABASE_URL"])
        assert await conn.fetchval("select 1") == 1
        await conn.execute("insert into public.survivor values (2, 'written between restarts')")
        await conn.close()
    finally:
        assert stack.stop() == 0
    assert not _port_open(stack.port), "the gateway is still listening after SIGTERM"
    assert not _port_open(stack.db_port), "Postgres is still running after SIGTERM"

    again = stack.start()
    try:
        assert again == env, "keys and URLs must not change across restarts"
        conn = await _checklist_connect(again["DATABASE_URL"])
        notes = await conn.fetch("select id, note from public.survivor order by id")
        history = await conn.fetch("select version, name from supabase_migrations.schema_migrations")
        await conn.close()
        assert [tuple(r) for r in notes] == [(1, "from the migration"), (2, "written between restarts")]
        assert [tuple(r) for r in history] == [("20260101000000", "survivor")]
        key = again["SUPABASE_SERVICE_ROLE_KEY"]
        async with httpx.AsyncClient() as client:
            response = await client.get(
                f"{again['SUPABASE_URL']}/rest/v1/survivor?select=id&order=id",
                headers={"apikey": key, "Authorization": f"Bearer {key}"},
            )
        assert response.status_code == 200
        assert response.json() == [{"id": 1}, {"id": 2}]
    finally:
        stack.stop()

    stack.start("--fresh")
    try:
        conn = await _checklist_connect(read_database_url(stack))
        assert await conn.fetchval("select count(*) from public.survivor") == 1
        await conn.close()
    finally:
        stack.stop()


def read_database_url(stack: DevstackProcess) -> str:
    from neiromatrius_devstack.process import read_env_file

    return read_env_file(stack.env_file)["DATABASE_URL"]


async def test_wrong_api_key_is_refused_like_kong(tmp_path: Path, migrations_dir: Path) -> None:
    stack = DevstackProcess(tmp_path / "data", migrations_dir=migrations_dir)
    env = stack.start()
    try:
        async with httpx.AsyncClient(base_url=env["SUPABASE_URL"]) as client:
            missing = await client.get("/rest/v1/survivor")
            wrong = await client.get("/rest/v1/survivor", headers={"apikey": "not-a-key"})
        assert missing.status_code == 401
        assert missing.json() == {"message": "No API key found in request"}
        assert wrong.status_code == 401
        assert wrong.json() == {"message": "Invalid authentication credentials"}
    finally:
        stack.stop()


@pytest.mark.timeout(300)
async def test_supabase_cli_sees_the_same_migration_history(
    tmp_path: Path, migrations_dir: Path, supabase_cli: Path
) -> None:
    stack = DevstackProcess(tmp_path / "data", migrations_dir=migrations_dir)
    env = stack.start()
    try:
        project = tmp_path / "project"
        (project / "supabase").mkdir(parents=True)
        shutil.copytree(migrations_dir, project / "supabase" / "migrations")
        db_url = env["DATABASE_URL"].replace("+asyncpg", "") + "?sslmode=disable"
        result = await asyncio.to_thread(
            subprocess.run,
            [str(supabase_cli), "migration", "list", "--db-url", db_url],
            cwd=project, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        row = next(line for line in result.stdout.splitlines() if "20260101000000" in line)
        local, remote = [cell.strip(" `") for cell in row.split("|")][:2]
        assert local == remote == "20260101000000"
    finally:
        stack.stop()


async def test_an_existing_postgres_is_bootstrapped_and_left_running(tmp_path: Path, migrations_dir: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "existing", free_port())
    server.init("existing-password")
    server.start()
    try:
        url = f"postgresql+asyncpg://postgres:existing-password@127.0.0.1:{server.port}/postgres"
        stack = DevstackProcess(tmp_path / "data", migrations_dir=migrations_dir, extra_env={"DATABASE_URL": url})
        env = stack.start()
        try:
            assert env["DATABASE_URL"] == url
            key = env["SUPABASE_SERVICE_ROLE_KEY"]
            async with httpx.AsyncClient() as client:
                response = await client.get(
                    f"{env['SUPABASE_URL']}/rest/v1/survivor?select=note",
                    headers={"apikey": key, "Authorization": f"Bearer {key}"},
                )
            assert response.json() == [{"note": "from the migration"}]
        finally:
            assert stack.stop() == 0
        assert not (tmp_path / "data" / "pg").exists(), "no embedded cluster may be created beside a given database"
        assert server.is_running(), "the stack must not stop a Postgres it did not start"
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        roles = await conn.fetch(
            "select rolname from pg_roles where rolname in ('anon', 'authenticated', 'service_role')"
        )
        await conn.close()
        assert len(roles) == 3
    finally:
        server.stop()
