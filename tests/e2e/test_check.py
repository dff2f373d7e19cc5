"""``neiromatrius check`` as a real command: all ✅ on the local stack, and one ❌ naming the culprit for each
line of the checklist that is broken, while every other line still runs. OpenAI and Telegram are loopback
receivers (their base URLs are settings); everything else is the real local stack or a closed port."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import jwt
import pytest

from neiromatrius_devstack.process import free_port
from tests.conftest import MakeReceiver, Stack
from tests.e2e.conftest import SECRET_KEY, ServiceProcess, StartService, service_env
from tests.support.http_receiver import Reply
from tests.support.operators import Operator, Operators
from tests.support.redis_server import RedisServer

Api = Callable[..., tuple[str, ServiceProcess]]
ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "supabase" / "migrations"
SHIPPED = len(list(MIGRATIONS.glob("*.sql")))
# The lines every pre-deploy run prints: nine settings, then the database, migrations, PostgREST, Realtime,
# Auth and Operators.
BASE_LINES = 15
BOT_TOKEN = "123456789:AAHcheckcheckcheckcheckcheckcheck00"
MODELS = json.dumps({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]}).encode()
GET_ME = json.dumps({"ok": True, "result": {"id": 123456789, "is_bot": True, "username": "check_bot"}}).encode()


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    @property
    def failed(self) -> list[str]:
        return [line for line in self.lines if line.startswith("❌")]


def check_env(stack: Stack, **overrides: str) -> dict[str, str]:
    """A clean environment holding exactly the settings of a deployment on the stack."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONUNBUFFERED": "1",
        "SUPABASE_URL": stack.url,
        "SUPABASE_SERVICE_ROLE_KEY": stack.service_key,
        "SUPABASE_ANON_KEY": stack.anon_key,
        "DATABASE_URL": stack.database_url.replace("postgresql://", "postgresql+asyncpg://", 1),
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_ORIGINS": '["https://app.example.com"]',
    }
    env.update(overrides)
    return env


async def run_check(env: dict[str, str], *args: str, tmp_path: Path, bound: float = 90.0) -> Run:
    """The command as a user runs it, from the project root, reading no ``.env`` but an empty one."""
    empty = tmp_path / "empty.env"
    empty.write_text("", encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "neiromatrius", "check", "--env-file", str(empty), *args,
        env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), bound)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


@pytest.fixture(autouse=True)
async def active_admin(operators: Operators) -> Operator:
    """Every line passes only when someone can manage operators."""
    return await operators.make("admin")


async def test_the_local_stack_passes_every_line(stack: Stack, tmp_path: Path) -> None:
    run = await run_check(check_env(stack), tmp_path=tmp_path)

    assert run.code == 0, run.out + run.err
    assert len(run.lines) == BASE_LINES
    assert all(line.startswith("✅ ") for line in run.lines), run.out
    assert "✅ DATABASE_URL format is right" in run.out
    assert f"✅ Migrations are all applied ({SHIPPED} in supabase/migrations)" in run.out
    assert "✅ Realtime joins a channel with the service key" in run.out
    assert any(line.startswith("✅ Auth answers /auth/v1/health") for line in run.lines), run.out
    assert any(line.startswith("✅ Operators have ") and "active admin" in line for line in run.lines), run.out


async def test_no_active_admin_is_named_with_the_command_that_fixes_it(
    stack: Stack, tmp_path: Path, operators: Operators, active_admin: Operator, db: asyncpg.Connection
) -> None:
    admins = await db.fetch("select user_id from public.operators where role = 'admin' and active")
    await db.execute("update public.operators set active = false where role = 'admin'")
    try:
        run = await run_check(check_env(stack), tmp_path=tmp_path)
    finally:
        await db.execute("update public.operators set active = true where user_id = any($1::uuid[])",
                         [row["user_id"] for row in admins])  # fmt: skip
    assert run.code == 1
    assert run.failed == [
        "❌ Operators: have no active admin: nobody can manage operators — fix: create one: neiromatrius operator"
        " add EMAIL --role admin (or neiromatrius operator activate EMAIL)"
    ]


async def test_json_gives_every_check_in_the_documented_shape(stack: Stack, tmp_path: Path) -> None:
    run = await run_check(check_env(stack), "--json", tmp_path=tmp_path)

    report = json.loads(run.out)
    assert run.code == 0
    assert report["ok"] is True
    assert len(report["checks"]) == BASE_LINES
    assert all(set(check) == {"name", "ok", "detail", "fix", "variable"} for check in report["checks"])
    names = [check["name"] for check in report["checks"]]
    assert names[:3] == ["SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_ANON_KEY"]
    assert names[-6:] == ["Database", "Migrations", "PostgREST", "Realtime", "Auth", "Operators"]


async def test_json_reports_a_failure_with_its_variable_and_fix(stack: Stack, tmp_path: Path) -> None:
    run = await run_check(check_env(stack, SECRET_KEY="too-short"), "--json", tmp_path=tmp_path)

    report = json.loads(run.out)
    assert run.code == 1
    assert report["ok"] is False
    [failed] = [check for check in report["checks"] if not check["ok"]]
    assert failed["variable"] == "SECRET_KEY"
    assert failed["detail"] == "must be at least 32 characters"
    assert "secrets.token_urlsafe" in failed["fix"]


async def test_openai_and_telegram_keys_that_are_accepted_pass(
    stack: Stack, tmp_path: Path, receiver: MakeReceiver
) -> None:
    openai = await receiver(Reply(body=MODELS))
    telegram = await receiver(Reply(body=GET_ME))
    env = check_env(
        stack,
        OPENAI_API_KEY="sk-check",
        OPENAI_BASE_URL=openai.url("/v1"),
        TELEGRAM_ENABLED="true",
        TELEGRAM_BOT_TOKEN=BOT_TOKEN,
        TELEGRAM_API_URL=telegram.url(""),
    )

    run = await run_check(env, tmp_path=tmp_path)

    assert run.code == 0, run.out
    assert "✅ OpenAI accepts OPENAI_API_KEY; gpt-4o-mini is available" in run.lines
    assert "✅ Telegram accepts TELEGRAM_BOT_TOKEN (@check_bot)" in run.lines
    assert [r.target for r in openai.requests] == ["/v1/models"]
    assert openai.requests[0].headers["authorization"] == "Bearer sk-check"
    assert [r.target for r in telegram.requests] == [f"/bot{BOT_TOKEN}/getMe"]
    assert BOT_TOKEN not in run.out + run.err


async def test_a_redis_that_answers_passes(stack: Stack, tmp_path: Path, redis_server: RedisServer) -> None:
    run = await run_check(check_env(stack, REDIS_URL=redis_server.url), tmp_path=tmp_path)

    assert run.code == 0, run.out
    assert f"✅ Redis answers PING (127.0.0.1:{redis_server.port})" in run.lines
    assert len(run.lines) == BASE_LINES + 1


def _foreign_service_key() -> str:
    """A service_role key with the right claims, signed by some other project's secret."""
    now = int(time.time())
    claims = {"iss": "supabase", "role": "service_role", "iat": now, "exp": now + 3600}
    return jwt.encode(claims, "another-projects-jwt-secret-" + "z" * 20, algorithm="HS256")


def _database_url(stack: Stack, *, password: str | None = None, port: int | None = None) -> str:
    parts = urlsplit(stack.database_url)
    netloc = f"{parts.username}:{password or parts.password}@{parts.hostname}:{port or parts.port}"
    return parts._replace(scheme="postgresql+asyncpg", netloc=netloc).geturl()


@dataclass(frozen=True)
class Broken:
    """One line of the checklist broken: the ❌ lines expected (prefixes), and how many lines in all."""

    env: dict[str, str]
    expect: tuple[str, ...]
    lines: int = BASE_LINES


def _broken(case: str, stack: Stack, tmp_path: Path, openai_url: str, telegram_url: str) -> tuple[Broken, list[str]]:
    closed = free_port()
    args: list[str] = []
    if case == "database url without +asyncpg":
        broken = Broken(
            {"DATABASE_URL": stack.database_url},
            (
                "❌ DATABASE_URL: must start with postgresql+asyncpg:// — fix: add +asyncpg after postgresql",
                "❌ Database (DATABASE_URL): skipped: needs DATABASE_URL",
                "❌ Migrations (DATABASE_URL): skipped: needs DATABASE_URL",
            ),
        )
    elif case == "wrong database password":
        broken = Broken(
            {"DATABASE_URL": _database_url(stack, password="not-the-password")},
            (
                f"❌ Database (DATABASE_URL): 127.0.0.1:{urlsplit(stack.database_url).port} rejected the password",
                "❌ Migrations (DATABASE_URL): skipped: needs a database that answers — fix: see the Database line",
            ),
        )
    elif case == "wrong database port":
        broken = Broken(
            {"DATABASE_URL": _database_url(stack, port=closed)},
            (
                f"❌ Database (DATABASE_URL): nothing answers at 127.0.0.1:{closed}",
                "❌ Migrations (DATABASE_URL): skipped",
            ),
        )
    elif case == "secret key too short":
        broken = Broken({"SECRET_KEY": "short"}, ("❌ SECRET_KEY: must be at least 32 characters",))
    elif case == "allowed origins do not parse":
        broken = Broken({"ALLOWED_ORIGINS": '["https://a.example.com"'}, ("❌ ALLOWED_ORIGINS: does not parse",))
    elif case == "anon and service keys swapped":
        broken = Broken(
            {"SUPABASE_SERVICE_ROLE_KEY": stack.anon_key, "SUPABASE_ANON_KEY": stack.service_key},
            (
                "❌ SUPABASE_SERVICE_ROLE_KEY: carries role 'anon', not 'service_role' — fix: swapped with",
                "❌ SUPABASE_ANON_KEY: carries role 'service_role', not 'anon' — fix: swapped with",
                "❌ PostgREST (SUPABASE_SERVICE_ROLE_KEY): skipped",
                "❌ Realtime (SUPABASE_SERVICE_ROLE_KEY): skipped",
                "❌ Auth (SUPABASE_SERVICE_ROLE_KEY): skipped",
                "❌ Operators (SUPABASE_SERVICE_ROLE_KEY): skipped",
            ),
        )
    elif case == "service key of another project":
        broken = Broken(
            {"SUPABASE_SERVICE_ROLE_KEY": _foreign_service_key()},
            (
                "❌ PostgREST (SUPABASE_SERVICE_ROLE_KEY): rejected the service key (401)",
                "❌ Realtime (SUPABASE_SERVICE_ROLE_KEY): refused the service key (40",
                "❌ Auth (SUPABASE_SERVICE_ROLE_KEY): rejected the service key (401)",
                "❌ Operators (SUPABASE_SERVICE_ROLE_KEY): rejected the service key (401)",
            ),
        )
    elif case == "a migration not applied":
        folder = tmp_path / "migrations"
        shutil.copytree(MIGRATIONS, folder)
        (folder / "29990101000000_not_pushed_yet.sql").write_text("select 1;\n", encoding="utf-8")
        args = ["--migrations", str(folder)]
        broken = Broken(
            {}, (f"❌ Migrations: 1 of {SHIPPED + 1} in {folder} not applied: 29990101000000_not_pushed_yet.sql",)
        )
    elif case == "openai key rejected":
        env = {"OPENAI_API_KEY": "sk-revoked", "OPENAI_BASE_URL": openai_url}
        broken = Broken(env, ("❌ OpenAI (OPENAI_API_KEY): rejected OPENAI_API_KEY (401)",), BASE_LINES + 1)
    elif case == "telegram token rejected":
        env = {"TELEGRAM_ENABLED": "true", "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_API_URL": telegram_url}
        broken = Broken(env, ("❌ Telegram (TELEGRAM_BOT_TOKEN): rejected TELEGRAM_BOT_TOKEN (401)",), BASE_LINES + 1)
    elif case == "redis unreachable":
        env = {"REDIS_URL": f"redis://:redis-password@127.0.0.1:{closed}/0"}
        broken = Broken(env, (f"❌ Redis (REDIS_URL): nothing answers at 127.0.0.1:{closed}",), BASE_LINES + 1)
    else:
        raise AssertionError(case)
    return broken, args


CASES = [
    "database url without +asyncpg",
    "wrong database password",
    "wrong database port",
    "secret key too short",
    "allowed origins do not parse",
    "anon and service keys swapped",
    "service key of another project",
    "a migration not applied",
    "openai key rejected",
    "telegram token rejected",
    "redis unreachable",
]


@pytest.mark.parametrize("case", CASES)
async def test_a_broken_line_is_named_and_the_rest_still_run(
    case: str, stack: Stack, tmp_path: Path, receiver: MakeReceiver
) -> None:
    openai = await receiver(Reply(status=401, body=b'{"error": {"code": "invalid_api_key"}}'))
    telegram = await receiver(Reply(status=401, body=b'{"ok": false, "error_code": 401}'))
    broken, args = _broken(case, stack, tmp_path, openai.url("/v1"), telegram.url(""))
    env = check_env(stack, **broken.env)

    run = await run_check(env, *args, tmp_path=tmp_path)

    assert run.code == 1, run.out
    assert len(run.lines) == broken.lines, run.out  # every check still ran (or said why it was skipped)
    assert all(line.startswith(("✅ ", "❌ ")) for line in run.lines)
    for expected in broken.expect:
        assert any(line.startswith(expected) for line in run.failed), f"no line {expected!r} in:\n{run.out}"
    assert len(run.failed) == len(broken.expect), run.out
    for secret in ("not-the-password", "redis-password", BOT_TOKEN, "sk-revoked"):
        assert secret not in run.out + run.err


async def test_a_service_that_hangs_is_cut_off_by_the_timeout(
    stack: Stack, tmp_path: Path, receiver: MakeReceiver
) -> None:
    openai = await receiver(Reply(hang=True))
    env = check_env(stack, OPENAI_API_KEY="sk-check", OPENAI_BASE_URL=openai.url("/v1"))

    run = await run_check(env, "--timeout", "2", tmp_path=tmp_path, bound=30)

    assert run.code == 1
    [line] = run.failed
    assert line.startswith("❌ OpenAI"), run.out
    assert len(run.lines) == BASE_LINES + 1


@pytest.mark.parametrize(
    "args",
    [["--url", "ftp://api.example.com"], ["--migrations", "/nonexistent/migrations"], ["--timeout", "0"]],
)
async def test_usage_errors_exit_2(stack: Stack, tmp_path: Path, args: list[str]) -> None:
    run = await run_check(check_env(stack), *args, tmp_path=tmp_path)

    assert run.code == 2
    assert run.out == ""
    assert run.err.startswith("❌ ")


@pytest.fixture
async def check_client(db: asyncpg.Connection) -> AsyncIterator[None]:
    """The test message's client (and everything it wrote) goes once the test is over."""
    yield
    await db.execute("delete from public.clients where id = 'check_client'")


async def test_after_deploy_the_api_passes_health_and_the_test_message(
    stack: Stack, tmp_path: Path, api: Api, start_service: StartService, check_client: None
) -> None:
    start_service("listener", service_env(stack))
    url, _ = api(INTAKE_API_KEY="intake-key-for-the-check")
    env = check_env(stack, INTAKE_API_KEY="intake-key-for-the-check")

    run = await run_check(env, "--url", url, tmp_path=tmp_path)
    without_key = await run_check(check_env(stack), "--url", url, "--json", tmp_path=tmp_path)

    assert run.code == 0, run.out + run.err
    assert run.lines == [
        "✅ /health answers status ok, database ok, redis unavailable",
        "✅ /api/health/db answers status ok, database connected",
        "✅ Test message gets a classification (greeting) and a response (model offline-rules-v1)",
    ]
    report = json.loads(without_key.out)
    assert without_key.code == 1
    assert [check["ok"] for check in report["checks"]] == [True, True, False]
    assert report["checks"][2]["variable"] == "INTAKE_API_KEY"


async def test_after_deploy_nothing_listening_fails_every_line(stack: Stack, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    run = await run_check(check_env(stack), "--url", url, tmp_path=tmp_path)

    assert run.code == 1
    assert len(run.failed) == 3 == len(run.lines)
    assert run.failed[0].startswith(f"❌ /health: no answer from {url} (ConnectError)")
