"""The per-request transaction, against a fake pool that records what it is sent."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from neiromatrius_devstack import jwt
from neiromatrius_devstack.rest.auth import Authenticator
from neiromatrius_devstack.rest.catalog import Catalog
from neiromatrius_devstack.rest.engine import Engine
from neiromatrius_devstack.rest.errors import RestError
from neiromatrius_devstack.rest.reply import singular_error
from neiromatrius_devstack.rest.request import ApiRequest, build_request

SECRET = "a-local-secret-with-at-least-32-characters"


class FakeConnection:
    def __init__(self, row: dict[str, Any] | None = None, error: Exception | None = None) -> None:
        self.sent: list[str] = []
        self.row = row or {"page": 1}
        self.error = error
        self.in_transaction = False

    async def execute(self, sql: str) -> str:
        self.sent.append(sql)
        self.in_transaction = sql.startswith("BEGIN")
        return "OK"

    async def fetchrow(self, sql: str, *args: object) -> dict[str, Any]:
        self.sent.append(sql)
        if self.error is not None:
            raise self.error
        return self.row

    def is_closed(self) -> bool:
        return False

    def is_in_transaction(self) -> bool:
        return self.in_transaction

    def terminate(self) -> None:
        self.sent.append("<terminated>")


class FakePool:
    def __init__(self, conn: FakeConnection | None = None, acquire_error: BaseException | None = None) -> None:
        self.conn = conn
        self.acquire_error = acquire_error
        self.released = 0

    async def acquire(self, **_options: object) -> FakeConnection:
        if self.acquire_error is not None:
            raise self.acquire_error
        assert self.conn is not None
        return self.conn

    async def release(self, conn: FakeConnection) -> None:
        self.released += 1


class FakeCache:
    catalog = Catalog(role_settings={"authenticated": (("statement_timeout", "8s"),)})


def engine(pool: FakePool) -> Engine:
    return Engine(FakeCache(), pool, max_rows=1000)  # type: ignore[arg-type]


def request(method: str = "GET", headers: dict[str, str] | None = None, query: str = "") -> ApiRequest:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return build_request(method, "/todos", raw, query, b"", Authenticator(SECRET, "anon"), ("public",))


async def test_one_transaction_with_the_request_settings_then_commit() -> None:
    conn = FakeConnection()
    token = jwt.user_token(SECRET, sub="u-1")
    req = request("POST", {"Authorization": f"Bearer {token}", "Cookie": "a=b", "X-Trace": "it's"})
    row = await engine(FakePool(conn)).run(req, "SELECT 1", [], read_only=False)
    assert row == {"page": 1}
    script, statement, end = conn.sent
    assert script.startswith("BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE; SELECT ")
    assert "set_config(E'statement_timeout', E'8s', true), set_config(E'role', E'authenticated', true)" in script
    assert "set_config(E'request.method', E'POST', true), set_config(E'request.path', E'/todos', true)" in script
    assert '"x-trace":"it\'\'s"' in script  # quotes in header values are escaped inside the literal
    assert "set_config(E'request.cookies', E'{\"a\":\"b\"}', true)" in script
    assert (statement, end) == ("SELECT 1", "COMMIT")


async def test_reads_are_read_only_and_anon_gets_role_claims() -> None:
    conn = FakeConnection()
    await engine(FakePool(conn)).run(request(), "SELECT 1", [], read_only=True)
    assert "READ ONLY" in conn.sent[0]
    assert "set_config(E'request.jwt.claims', E'{\"role\": \"anon\"}', true)" in conn.sent[0]


async def test_a_failed_check_rolls_back() -> None:
    conn = FakeConnection(row={"page": 2})
    with pytest.raises(RestError) as error:
        await engine(FakePool(conn)).run(request(), "SELECT 1", [], read_only=True, check=lambda r: singular_error(2))
    assert error.value.code == "PGRST116"
    assert conn.sent[-1] == "ROLLBACK"


async def test_server_errors_roll_back_and_map_to_http() -> None:
    failure = asyncpg.PostgresError.new({"C": "42501", "M": "permission denied for table todos"})
    conn = FakeConnection(error=failure)
    pool = FakePool(conn)
    with pytest.raises(RestError) as error:
        await engine(pool).run(request(), "SELECT 1", [], read_only=True)
    assert (error.value.status, error.value.headers) == (401, {"WWW-Authenticate": "Bearer"})
    assert conn.sent[-1] == "ROLLBACK"
    assert pool.released == 1


async def test_tx_rollback_preference_rolls_back() -> None:
    conn = FakeConnection()
    await engine(FakePool(conn)).run(request(headers={"Prefer": "tx=rollback"}), "SELECT 1", [], read_only=False)
    assert conn.sent[-1] == "ROLLBACK"


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (OSError("connection refused"), 503, "PGRST000"),
        (asyncpg.PostgresError.new({"C": "57P03", "M": "the database system is shutting down"}), 503, "PGRST000"),
        (TimeoutError(), 504, "PGRST003"),
    ],
)
async def test_no_connection_is_a_503_or_504(failure: BaseException, status: int, code: str) -> None:
    with pytest.raises(RestError) as error:
        await engine(FakePool(acquire_error=failure)).run(request(), "SELECT 1", [], read_only=True)
    assert (error.value.status, error.value.code) == (status, code)
