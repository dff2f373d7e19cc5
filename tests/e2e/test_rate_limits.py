"""Rate limits on intake as a caller meets them: real API processes, a real redis-server shared by them or
none at all, and that server SIGKILLed and restarted under a running API."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import ServiceProcess
from tests.support.redis_server import RedisServer
from tests.support.waiting import eventually

Api = Callable[..., tuple[str, ServiceProcess]]

WEBHOOK = "http://127.0.0.1:9/hook"  # never called: no listener runs here
DATABASE_LINE = "Database connection established and responsive"
CONNECTED = "Redis cache connected"
FALLBACK = "Redis cache unavailable, using in-memory fallback"
STARTING = "Starting up application..."
RECOVERY_BOUND = 20.0


@pytest.fixture
def client_id(clean_clients: list[str]) -> str:
    value = f"limits-{uuid.uuid4().hex[:12]}"
    clean_clients.append(value)
    return value


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def post(http: httpx.AsyncClient, url: str, client_id: str, chat: str) -> httpx.Response:
    headers = {"X-Webhook-URL": WEBHOOK, "X-Platform": "test", "X-Chat-ID": chat, "Prefer": "respond-async"}
    return await http.post(f"{url}/api/messages/", headers=headers, json={"client_id": client_id, "content": "Hi"})


async def stored(db: asyncpg.Connection, client_id: str, chat: str | None = None) -> int:
    count = await db.fetchval(
        "select count(*) from public.messages m join public.conversations c on c.id = m.conversation_id"
        " where m.client_id = $1 and ($2::text is null or c.chat_id = $2)",
        client_id,
        chat,
    )
    return int(count)


def assert_refused(response: httpx.Response, scope: str) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) >= 1
    error = response.json()["error"]
    assert set(response.json()) == {"error"}
    assert (error["code"], error["scope"]) == ("rate_limited", scope)
    assert isinstance(error["message"], str)


def start_up_lines(service: ServiceProcess) -> list[str]:
    service.wait_for_line(STARTING)
    messages = [json.loads(line)["message"] for line in list(service.lines) if line.startswith("{")]
    return [message for message in messages if message in (DATABASE_LINE, CONNECTED, FALLBACK, STARTING)]


async def test_with_redis_the_fourth_message_in_a_chat_is_refused_and_not_stored(
    api: Api, redis_server: RedisServer, http: httpx.AsyncClient, db: asyncpg.Connection, client_id: str
) -> None:
    url, service = api(REDIS_URL=redis_server.url, RATE_LIMIT_CHAT_PER_MINUTE="3", RATE_LIMIT_CLIENT_PER_MINUTE="5")

    in_a = [await post(http, url, client_id, "chat-a") for _ in range(4)]
    in_b = [await post(http, url, client_id, "chat-b") for _ in range(3)]

    assert start_up_lines(service) == [DATABASE_LINE, CONNECTED, STARTING]
    assert [r.status_code for r in in_a[:3]] == [202, 202, 202]
    assert_refused(in_a[3], "chat")
    assert await stored(db, client_id, "chat-a") == 3
    assert [r.status_code for r in in_b[:2]] == [202, 202]  # another chat of the client, until the client's 5
    assert_refused(in_b[2], "client")
    assert await stored(db, client_id) == 5
    health = await http.get(f"{url}/health")
    assert health.json() == {"status": "ok", "database": "ok", "redis": "ok"}


async def test_two_api_processes_sharing_redis_share_the_budget(
    api: Api, redis_server: RedisServer, http: httpx.AsyncClient, db: asyncpg.Connection, client_id: str
) -> None:
    first, _ = api(REDIS_URL=redis_server.url, RATE_LIMIT_CHAT_PER_MINUTE="3")
    second, _ = api(REDIS_URL=redis_server.url, RATE_LIMIT_CHAT_PER_MINUTE="3")

    answers = [await post(http, url, client_id, "shared") for url in (first, second, first, second)]

    assert [r.status_code for r in answers[:3]] == [202, 202, 202]
    assert_refused(answers[3], "chat")
    assert await stored(db, client_id, "shared") == 3


async def test_without_redis_each_process_keeps_the_limit_in_memory(
    api: Api, http: httpx.AsyncClient, db: asyncpg.Connection, client_id: str
) -> None:
    first, service = api(RATE_LIMIT_CHAT_PER_MINUTE="3")
    second, _ = api(RATE_LIMIT_CHAT_PER_MINUTE="3")

    from_first = [await post(http, first, client_id, "local") for _ in range(4)]
    from_second = await post(http, second, client_id, "local")

    assert start_up_lines(service) == [DATABASE_LINE, FALLBACK, STARTING]
    assert [r.status_code for r in from_first[:3]] == [202, 202, 202]
    assert_refused(from_first[3], "chat")
    assert from_second.status_code == 202  # its own buckets: nothing shared without Redis
    assert await stored(db, client_id, "local") == 4
    assert (await http.get(f"{first}/health")).json() == {"status": "ok", "database": "ok", "redis": "unavailable"}


async def test_a_killed_redis_leaves_the_api_answering_and_health_follows_it_down_and_up(
    api: Api, redis_server: RedisServer, http: httpx.AsyncClient, db: asyncpg.Connection, client_id: str
) -> None:
    url, service = api(REDIS_URL=redis_server.url, RATE_LIMIT_CHAT_PER_MINUTE="3")
    before = await post(http, url, client_id, "before")

    redis_server.kill()
    during = [await post(http, url, client_id, "during") for _ in range(4)]
    health_during = await http.get(f"{url}/health")
    redis_server.restart()

    async def redis_ok() -> dict[str, str] | None:
        body: dict[str, str] = (await http.get(f"{url}/health")).json()
        return body if body["redis"] == "ok" else None

    health_after = await eventually(redis_ok, bound=RECOVERY_BOUND, every=0.1)
    after = await post(http, url, client_id, "after")

    assert before.status_code == 202
    assert [r.status_code for r in during[:3]] == [202, 202, 202]  # answered from memory, with the same limit
    assert_refused(during[3], "chat")
    assert health_during.status_code == 200
    assert health_during.json() == {"status": "ok", "database": "ok", "redis": "unavailable"}
    assert health_after == {"status": "ok", "database": "ok", "redis": "ok"}
    assert after.status_code == 202
    assert await stored(db, client_id) == 5
    switches = [line for line in service.lines if "Rate limits: " in line]
    assert len(switches) == 2, switches  # once down, once back: not once per request
    assert "counting in memory" in switches[0] and "answers again" in switches[1]
    assert redis_server.url not in service.output()
