"""``neiromatrius operator`` as a user runs it, against the stack's Auth admin API and PostgREST; the
accounts it makes sign in with supabase-py's auth client and read what their role allows."""

from __future__ import annotations

import asyncio
import os
import pty
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from supabase import AsyncClientOptions, acreate_client
from supabase_auth.errors import AuthApiError

from neiromatrius_devstack.process import free_port
from tests.conftest import Stack
from tests.e2e.conftest import SECRET_KEY

BOUND = 60.0


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def cli_env(stack: Stack, **overrides: str) -> dict[str, str]:
    env = {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "PYTHONUNBUFFERED": "1",
        "SUPABASE_URL": stack.url, "SUPABASE_SERVICE_ROLE_KEY": stack.service_key, "SECRET_KEY": SECRET_KEY,
    }  # fmt: skip
    env.update(overrides)
    return {key: value for key, value in env.items() if value}


async def operator(env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None) -> Run:
    """``neiromatrius operator ARGS``: ``stdin`` piped in, or (None) a terminal on stdin, as typed by hand."""
    primary, terminal = pty.openpty() if stdin is None else (None, None)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "neiromatrius", "operator", *args, env=env, cwd=cwd,
            stdin=terminal if terminal is not None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(stdin.encode() if stdin is not None else None), BOUND)
    finally:
        for fd in (primary, terminal):
            if fd is not None:
                os.close(fd)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


@pytest.fixture
async def emails(db: asyncpg.Connection) -> AsyncIterator[list[str]]:
    """Emails for this test's accounts; their Auth users (and so their operators rows) go afterwards."""
    made: list[str] = []
    yield made
    await db.execute("delete from auth.users where lower(email) = any($1::text[])", [e.lower() for e in made])


def new_email(emails: list[str]) -> str:
    emails.append(f"op-{uuid.uuid4().hex[:10]}@test.neiromatrius.local")
    return emails[-1]


async def sign_in(stack: Stack, email: str, password: str) -> str:
    """supabase-py's own password sign-in; the session's access token."""
    async with httpx.AsyncClient(timeout=10) as http:
        options = AsyncClientOptions(auto_refresh_token=False, persist_session=False, httpx_client=http)
        client = await acreate_client(stack.url, stack.anon_key, options)
        response = await client.auth.sign_in_with_password({"email": email, "password": password})
    assert response.session is not None
    return response.session.access_token


async def as_operator(stack: Stack, token: str, function: str) -> object:
    headers = {"apikey": stack.anon_key, "Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"{stack.url}/rest/v1", headers=headers, timeout=10) as client:
        response = await client.post(f"/rpc/{function}")
    assert response.status_code == 200, response.text
    return response.json()


def password_line(run: Run) -> str:
    [line] = [line for line in run.out.splitlines() if line.strip().startswith("password: ")]
    return line.split("password: ", 1)[1].strip()


async def test_add_in_a_terminal_generates_a_password_that_signs_in_as_that_role(
    stack: Stack, tmp_path: Path, emails: list[str], db: asyncpg.Connection
) -> None:
    email = new_email(emails)
    run = await operator(cli_env(stack), tmp_path, "add", email.upper(), "--role", "admin", "--name", "Ann")

    assert run.code == 0, run.out + run.err
    assert f"✅ Operator added: {email} (admin)" in run.out
    password = password_line(run)
    assert len(password) >= 20
    row = await db.fetchrow(
        "select o.role, o.active, o.display_name, u.email_confirmed_at is not null as confirmed"
        " from public.operators o join auth.users u on u.id = o.user_id where u.email = $1",
        email,
    )
    assert dict(row or {}) == {"role": "admin", "active": True, "display_name": "Ann", "confirmed": True}
    token = await sign_in(stack, email, password)
    assert await as_operator(stack, token, "is_admin") is True


async def test_add_with_a_piped_password_prints_no_password(stack: Stack, tmp_path: Path, emails: list[str]) -> None:
    email = new_email(emails)
    run = await operator(cli_env(stack), tmp_path, "add", email, "--role", "agent", stdin="piped-pass-123\n")

    assert run.code == 0, run.out + run.err
    assert "password" not in run.out
    token = await sign_in(stack, email, "piped-pass-123")
    assert (await as_operator(stack, token, "is_operator"), await as_operator(stack, token, "is_admin")) == (
        True,
        False,
    )


async def test_list_deactivate_and_activate(stack: Stack, tmp_path: Path, emails: list[str]) -> None:
    env = cli_env(stack)
    email = new_email(emails)
    assert (
        await operator(env, tmp_path, "add", email, "--role", "agent", "--name", "Bo", stdin="bo-password\n")
    ).code == 0
    token = await sign_in(stack, email, "bo-password")

    listed = await operator(env, tmp_path, "list")
    assert listed.code == 0 and listed.out.splitlines()[0].split() == ["EMAIL", "ROLE", "STATE", "NAME", "SINCE"]
    [line] = [line for line in listed.out.splitlines() if line.startswith(email)]
    assert line.split()[1:4] == ["agent", "active", "Bo"]

    off = await operator(env, tmp_path, "deactivate", email)
    assert (off.code, off.out.strip()) == (
        0,
        f"✅ {email} is deactivated: no sign-in, nothing to read (REST and Realtime)",
    )
    assert await as_operator(stack, token, "is_operator") is False  # the same, still valid, token
    with pytest.raises(AuthApiError, match="User is banned"):
        await sign_in(stack, email, "bo-password")
    [line] = [line for line in (await operator(env, tmp_path, "list")).out.splitlines() if line.startswith(email)]
    assert line.split()[2] == "deactivated"

    on = await operator(env, tmp_path, "activate", email)
    assert on.code == 0 and await as_operator(stack, token, "is_operator") is True
    assert await as_operator(stack, await sign_in(stack, email, "bo-password"), "is_operator") is True


async def test_refusals_and_bad_input_have_their_exit_status_and_say_why(
    stack: Stack, tmp_path: Path, emails: list[str], db: asyncpg.Connection
) -> None:
    env = cli_env(stack)
    email = new_email(emails)
    assert (await operator(env, tmp_path, "add", email, "--role", "agent", stdin="first-password\n")).code == 0
    users_before = await db.fetchval("select count(*) from auth.users")

    cases = {
        "taken": (await operator(env, tmp_path, "add", email, "--role", "admin"), 1, f"{email} is an operator already"),
        "unknown": (await operator(env, tmp_path, "deactivate", "nobody@test.neiromatrius.local"), 1,
                    "no operator with the email nobody@test.neiromatrius.local"),
        "bad role": (await operator(env, tmp_path, "add", "x@test.neiromatrius.local", "--role", "owner"), 2,
                     "argument --role: invalid choice: 'owner'"),
        "bad email": (await operator(env, tmp_path, "add", "not-an-email", "--role", "agent"), 2,
                      "email: 'not-an-email' is not an email address"),
        "short password": (await operator(env, tmp_path, "add", "y@test.neiromatrius.local", "--role", "agent",
                                          stdin="abc\n"), 2, "password: must be at least 6 characters"),
        "empty stdin": (await operator(env, tmp_path, "add", "y@test.neiromatrius.local", "--role", "agent",
                                       stdin=""), 2, "password: stdin is empty"),
        "no settings": (await operator(cli_env(stack, SUPABASE_URL=""), tmp_path, "list"), 2,
                        "SUPABASE_URL: is required"),
        "supabase down": (await operator(cli_env(stack, SUPABASE_URL=f"http://127.0.0.1:{free_port()}"), tmp_path,
                                         "list"), 3, "Supabase Auth does not answer"),
    }  # fmt: skip
    for case, (run, code, message) in cases.items():
        assert run.code == code, (case, run.out, run.err)
        assert message in run.err, (case, run.err)
        assert "Traceback" not in run.err, case
    assert await db.fetchval("select count(*) from auth.users") == users_before  # nothing was written
