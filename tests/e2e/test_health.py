"""The checklist's health checks and start-up lines, from the real API process; what the API answers while
its database is down and once it is back; and a wrong setting stopping start-up with one line naming it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from neiromatrius_devstack.postgres import EmbeddedPostgres
from neiromatrius_devstack.process import DevstackProcess
from tests.conftest import Stack
from tests.e2e.conftest import ServiceProcess, service_env
from tests.support.waiting import eventually

Api = Callable[..., tuple[str, ServiceProcess]]

STARTUP_LINES = [
    "Database connection established and responsive",
    "Redis cache unavailable, using in-memory fallback",
    "Starting up application...",
]
DEGRADED = {"status": "degraded", "database": "unavailable", "redis": "unavailable"}
INTAKE_HEADERS = {"X-Webhook-URL": "http://127.0.0.1:9/hook", "X-Platform": "test", "X-Chat-ID": "health-1"}
RECOVERY_BOUND = 20.0


async def test_health_answers_exactly_what_the_checklist_expects(api: Api) -> None:
    url, _ = api()
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        service = await http.get("/health")
        database = await http.get("/api/health/db")

    assert service.status_code == 200
    assert service.headers["Content-Type"] == "application/json"
    assert service.text == '{"status":"ok","database":"ok","redis":"unavailable"}'
    assert database.status_code == 200
    assert database.text == '{"status":"ok","database":"connected"}'


async def test_the_start_up_lines_come_in_the_checklists_order_as_json_lines(api: Api) -> None:
    _, service = api()
    service.wait_for_line(STARTUP_LINES[-1])

    entries = [json.loads(line) for line in list(service.lines)]  # off a TTY every line is a JSON object

    messages = [entry["message"] for entry in entries]
    assert [message for message in messages if message in STARTUP_LINES] == STARTUP_LINES
    levels = {entry["message"]: entry["level"] for entry in entries}
    assert [levels[line] for line in STARTUP_LINES] == ["info", "warning", "info"]


@pytest.fixture
def private_stack(tmp_path: Path) -> Iterator[tuple[Stack, DevstackProcess]]:
    """A local stack of this test's own, whose Postgres the test may stop and start."""
    process = DevstackProcess(tmp_path / "data")
    env = process.start()
    try:
        target = Stack(
            url=env["SUPABASE_URL"],
            anon_key=env["SUPABASE_ANON_KEY"],
            service_key=env["SUPABASE_SERVICE_ROLE_KEY"],
            jwt_secret=env["SUPABASE_JWT_SECRET"],
            database_url=env["DATABASE_URL"].replace("+asyncpg", "", 1),
            local=True,
        )
        yield target, process
    finally:
        process.stop()


@pytest.fixture
async def private_db(private_stack: tuple[Stack, DevstackProcess]) -> AsyncIterator[Callable[..., Any]]:
    """Run one query on the private stack's database, on a connection of its own (the server may restart)."""

    async def fetchval(query: str, *args: Any) -> Any:
        conn = await asyncpg.connect(private_stack[0].database_url)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    yield fetchval


@pytest.mark.local_only
async def test_with_the_database_down_the_api_answers_503_and_recovers_when_it_returns(
    private_stack: tuple[Stack, DevstackProcess], private_db: Callable[..., Any], api: Api
) -> None:
    target, process = private_stack
    url, _ = api(target)
    postgres = EmbeddedPostgres(process.data_dir / "pg", process.db_port)
    client_id = f"health-{uuid.uuid4().hex[:12]}"
    intake = {"client_id": client_id, "content": "Where is my order?"}

    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        postgres.stop()
        try:
            service = await http.get("/health")
            database = await http.get("/api/health/db")
            accepting = await http.post(
                "/api/messages/", headers=INTAKE_HEADERS | {"Prefer": "respond-async"}, json=intake
            )
            waiting = await http.post("/api/messages/", headers=INTAKE_HEADERS, json=intake)
        finally:
            postgres.start()

        async def healthy() -> httpx.Response | None:
            response = await http.get("/health")
            return response if response.status_code == 200 else None

        recovered = await eventually(healthy, bound=RECOVERY_BOUND, every=0.1)
        accepted = await http.post("/api/messages/", headers=INTAKE_HEADERS | {"Prefer": "respond-async"}, json=intake)

    assert service.status_code == 503, service.text
    assert service.json() == DEGRADED
    assert service.headers["Retry-After"].isdigit()
    assert database.status_code == 503, database.text
    assert database.json()["database"] == "unavailable"
    assert database.headers["Retry-After"].isdigit()
    for refused in (accepting, waiting):  # never 200 without a stored row, never a bare 500
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"].isdigit()
        assert set(refused.json()) == {"error"}
        assert refused.json()["error"]["code"] == "database_unavailable"
        assert isinstance(refused.json()["error"]["message"], str)

    assert recovered.json() == {"status": "ok", "database": "ok", "redis": "unavailable"}
    assert accepted.status_code == 202, accepted.text
    message_id = uuid.UUID(accepted.json()["id"])
    assert await private_db("select client_id from public.messages where id = $1", message_id) == client_id
    assert await private_db("select count(*) from public.messages where client_id = $1", client_id) == 1


BAD_SETTINGS = {
    "SECRET_KEY of 10 characters": ("SECRET_KEY", {"SECRET_KEY": "ten-chars!"}),
    "SUPABASE_URL missing": ("SUPABASE_URL", {"SUPABASE_URL": None}),
    "SUPABASE_URL not http(s)": ("SUPABASE_URL", {"SUPABASE_URL": "ftp://127.0.0.1:9"}),
    "ALLOWED_ORIGINS broken JSON": ("ALLOWED_ORIGINS", {"ALLOWED_ORIGINS": '["https://console.example.com"'}),
    "API_PORT not a number": ("API_PORT", {"API_PORT": "eighty"}),
}


@pytest.mark.parametrize(("variable", "changes"), BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_a_wrong_setting_stops_start_up_with_one_line_naming_it(
    stack: Stack, tmp_path: Path, variable: str, changes: dict[str, str | None]
) -> None:
    env = service_env(stack, API_PORT="9")  # never bound: start-up must stop before serving
    for name, value in changes.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value

    done = subprocess.run(
        [sys.executable, "-m", "neiromatrius", "api"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    lines = (done.stdout + done.stderr).splitlines()
    assert done.returncode != 0, lines
    assert len(lines) == 1, lines
    assert variable in lines[0]
    assert "Traceback" not in lines[0]
    secret = changes.get("SECRET_KEY")
    assert secret is None or secret not in lines[0]  # a secret is named, never shown
