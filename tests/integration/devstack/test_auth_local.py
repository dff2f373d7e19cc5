"""What depends on the local stack's own Auth settings: token lifetime and the failed sign-in brake.

A stack of its own (small thresholds, a short lifetime), so its counters start at zero.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest

from neiromatrius_devstack.process import DevstackProcess, free_port
from tests.conftest import Stack
from tests.support.gotrue import GoTrue, UserFactory, auth_fingerprint

pytestmark = pytest.mark.local_only

SETTINGS = {
    "GOTRUE_JWT_EXP": "120",
    "DEVSTACK_AUTH_FAILED_SIGNINS_PER_EMAIL": "3",
    "DEVSTACK_AUTH_FAILED_SIGNINS_PER_ADDRESS": "8",
}
RATE_LIMITED = {"code": 429, "error_code": "over_request_rate_limit", "msg": "Request rate limit reached"}


@pytest.fixture(scope="module")
def tuned_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("auth-tuned")
    process = DevstackProcess(root / "data", migrations_dir=root / "no-migrations", extra_env=SETTINGS)
    env = process.start()
    try:
        yield Stack(
            url=env["SUPABASE_URL"], anon_key=env["SUPABASE_ANON_KEY"], service_key=env["SUPABASE_SERVICE_ROLE_KEY"],
            jwt_secret=env["SUPABASE_JWT_SECRET"], database_url=env["DATABASE_URL"].replace("+asyncpg", "", 1),
            local=True,
        )  # fmt: skip
    finally:
        process.stop()


@pytest.fixture
async def gotrue(tuned_stack: Stack) -> AsyncIterator[GoTrue]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield GoTrue(tuned_stack, http)


async def test_token_lifetime_is_a_stack_setting(tuned_stack: Stack, gotrue: GoTrue, make_user: UserFactory) -> None:
    session = await gotrue.session(await make_user())
    claims = jwt.decode(session["access_token"], tuned_stack.jwt_secret, algorithms=["HS256"], audience="authenticated")
    assert session["expires_in"] == 120
    assert claims["exp"] - claims["iat"] == 120


async def test_failed_sign_ins_are_braked_per_email_then_per_address(
    tuned_stack: Stack, gotrue: GoTrue, make_user: UserFactory
) -> None:
    known, other = await make_user(), await make_user()
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    db = await asyncpg.connect(tuned_stack.database_url)
    try:
        for _ in range(3):  # three failures for each address: the per-email threshold
            assert (await gotrue.sign_in(known.email, "wrong")).status_code == 400
            assert (await gotrue.sign_in(unknown, "wrong")).status_code == 400
        before = await auth_fingerprint(db)
        right = await gotrue.sign_in(known.email, known.password)
        guess = await gotrue.sign_in(unknown, known.password)
        assert (right.status_code, right.json()) == (429, RATE_LIMITED), "even the right password waits"
        assert (guess.status_code, guess.content) == (right.status_code, right.content), "no hint an email exists"
        assert await auth_fingerprint(db) == before, "a refused request writes nothing"

        assert (await gotrue.sign_in(other.email, other.password)).status_code == 200, "other emails still sign in"
        for _ in range(2):  # failures 7 and 8 from this address reach the per-address threshold
            assert (await gotrue.sign_in(f"x-{uuid.uuid4().hex[:6]}@example.com", "wrong")).status_code == 400
        braked = await gotrue.sign_in(other.email, other.password)
        assert (braked.status_code, braked.json()) == (429, RATE_LIMITED)
    finally:
        await db.close()


def test_a_bad_setting_stops_the_stack_naming_the_variable(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "neiromatrius",
        "devstack",
        "--data-dir",
        str(tmp_path / "data"),
        "--env-file",
        str(tmp_path / "stack.env"),
        "--port",
        str(free_port()),
        "--db-port",
        str(free_port()),
    ]
    env = {**os.environ, "GOTRUE_JWT_EXP": "an hour"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "GOTRUE_JWT_EXP must be a whole number, got 'an hour'" in done.stderr
    assert not (tmp_path / "data").exists(), "nothing started"
