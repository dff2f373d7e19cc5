"""The limiters in adapters/cache without a server: memory buckets and their eviction, and the fallback
switching between Redis and memory (a fake Redis client that fails, hangs or heals on cue)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from neiromatrius.adapters.rate_limiters import FallbackRateLimiter, MemoryRateLimiter, RedisRateLimiter
from neiromatrius.core.ratelimit import Bucket, Decision, IntakeLimits, Limit

BOUND = 5.0  # seconds a test waits for something that should happen at once
SECRET_URL = "redis://:hunter2-password@10.0.0.9:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def chat_limits(chat: str = "c1", per_minute: int = 2) -> list[Limit]:
    return IntakeLimits.per_minute(client=0, chat=per_minute).for_message("client", "test", chat)


async def acquire_many(limiter: Any, limits: Sequence[Limit], count: int) -> list[bool]:
    return [(await limiter.acquire(limits)).allowed for _ in range(count)]


async def test_memory_buckets_count_per_key_with_the_shared_arithmetic() -> None:
    clock = Clock()
    memory = MemoryRateLimiter(clock=clock)

    assert await acquire_many(memory, chat_limits("a"), 3) == [True, True, False]
    assert await acquire_many(memory, chat_limits("b"), 1) == [True]
    assert await memory.acquire(chat_limits("a")) == Decision(allowed=False, retry_after=30.0, scope="chat")
    clock.now += 30.0
    assert await acquire_many(memory, chat_limits("a"), 2) == [True, False]


async def test_memory_forgets_a_bucket_once_it_would_be_full_again() -> None:
    clock = Clock()
    memory = MemoryRateLimiter(clock=clock)
    await acquire_many(memory, chat_limits("a"), 2)
    await acquire_many(memory, chat_limits("b"), 1)
    assert len(memory) == 2

    clock.now += 59.0
    await memory.acquire(chat_limits("c"))
    assert len(memory) == 3
    clock.now += 1.0  # a and b are full again: as good as never seen
    await memory.acquire(chat_limits("c"))

    assert len(memory) == 1
    assert await acquire_many(memory, chat_limits("a"), 3) == [True, True, False]


async def test_memory_holds_at_most_max_buckets_dropping_the_least_recently_used() -> None:
    memory = MemoryRateLimiter(max_buckets=3, clock=Clock())
    for chat in ("a", "b", "c", "d"):
        await memory.acquire(chat_limits(chat))
    await memory.acquire(chat_limits("b"))
    await memory.acquire(chat_limits("e"))

    assert len(memory) == 3
    assert await acquire_many(memory, chat_limits("b"), 1) == [False]  # kept: used recently
    assert await acquire_many(memory, chat_limits("c"), 2) == [True, True]  # dropped: a fresh bucket


async def test_memory_takes_from_both_buckets_or_neither() -> None:
    memory = MemoryRateLimiter(clock=Clock())
    limits = IntakeLimits.per_minute(client=3, chat=2)

    chat_a = [(await memory.acquire(limits.for_message("x", "test", "a"))) for _ in range(3)]
    chat_b = [(await memory.acquire(limits.for_message("x", "test", "b"))) for _ in range(2)]

    assert [d.allowed for d in chat_a] == [True, True, False]
    assert chat_a[-1].scope == "chat"
    assert [d.allowed for d in chat_b] == [True, False]  # the refused third in chat a cost the client nothing
    assert chat_b[-1].scope == "client"


class FakeRedisClient:
    """What RedisRateLimiter uses of redis.asyncio.Redis: failing, hanging or healing on cue."""

    def __init__(self) -> None:
        self.error: Exception | None = None
        self.hang = False
        self.allow = True
        self.scripts: list[tuple[list[str], list[Any]]] = []
        self.pinged = asyncio.Event()  # set by every ping that answers
        self.closed = False

    def register_script(self, text: str) -> Any:
        async def run(keys: list[str], args: list[Any]) -> list[Any]:
            await self._answer()
            self.scripts.append((keys, args))
            return [1, 0, b"0"] if self.allow else [0, 1, b"12.5"]

        return run

    async def ping(self) -> bool:
        await self._answer()
        self.pinged.set()
        return True

    async def aclose(self) -> None:
        self.closed = True

    async def _answer(self) -> None:
        if self.hang:
            await asyncio.Event().wait()  # never answers: only the limiter's own bound ends this
        if self.error is not None:
            raise self.error


def fallback(client: FakeRedisClient, within: float = 0.05) -> FallbackRateLimiter:
    redis = RedisRateLimiter(client, within=within)  # type: ignore[arg-type]
    return FallbackRateLimiter(redis, MemoryRateLimiter(clock=Clock()), first_retry=0.01, max_retry=0.02)


def switch_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "neiromatrius.adapters.rate_limiters"]


async def test_the_redis_limiter_sends_prefixed_keys_sizes_and_ttls_and_reads_the_refusal() -> None:
    client = FakeRedisClient()
    redis = RedisRateLimiter(client)  # type: ignore[arg-type]
    limits = IntakeLimits.per_minute(client=120, chat=30).for_message("x", "test", "a")

    assert await redis.acquire(limits) == Decision.allow()
    client.allow = False
    assert await redis.acquire(limits) == Decision(allowed=False, retry_after=12.5, scope="client")

    keys, args = client.scripts[0]
    assert keys == ["neiromatrius:ratelimit:" + limit.key for limit in limits]
    assert args == ["120.0", "2.0", 61_000, "30.0", "0.5", 61_000]  # capacity, refill/s, TTL ms for each key


async def test_while_redis_answers_it_decides_and_health_says_ok() -> None:
    client = FakeRedisClient()
    limiter = fallback(client)
    client.allow = False

    decision = await limiter.acquire(chat_limits())

    assert decision.allowed is False  # Redis's answer, not memory's (a fresh memory bucket would allow)
    assert await limiter.status() == "ok"
    await limiter.aclose()
    assert client.closed


async def test_a_failing_redis_switches_to_memory_once_and_back_once_when_it_heals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    client = FakeRedisClient()
    limiter = fallback(client)
    assert await limiter.status() == "ok"
    client.error = RedisConnectionError(f"Error 111 connecting to {SECRET_URL}")
    client.pinged.clear()

    allowed = await acquire_many(limiter, chat_limits(), 3)

    assert allowed == [True, True, False]  # memory's buckets: two a minute
    assert await limiter.status() == "unavailable"
    assert len(client.scripts) == 0
    [lost] = switch_lines(caplog)
    assert "counting in memory" in lost
    assert "ConnectionError" in lost

    client.error = None
    client.allow = False
    await asyncio.wait_for(client.pinged.wait(), BOUND)  # the background probe reached Redis again
    decision = await limiter.acquire(chat_limits("fresh"))

    assert decision.allowed is False  # Redis decides again
    assert switch_lines(caplog)[1:] == ["Rate limits: Redis answers again; counting in Redis"]
    assert "hunter2" not in caplog.text
    assert "10.0.0.9" not in caplog.text
    await limiter.aclose()


async def test_a_hanging_redis_is_given_up_on_within_the_bound_and_memory_answers() -> None:
    client = FakeRedisClient()
    limiter = fallback(client, within=0.05)
    client.hang = True

    async with asyncio.timeout(BOUND):
        decision = await limiter.acquire(chat_limits())
        status = await limiter.status()

    assert decision.allowed is True
    assert status == "unavailable"
    await limiter.aclose()


async def test_a_redis_down_at_start_is_left_to_the_start_up_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    client = FakeRedisClient()
    client.error = RedisConnectionError("refused")
    limiter = fallback(client)

    assert await limiter.status() == "unavailable"
    assert await limiter.status() == "unavailable"

    assert switch_lines(caplog) == []
    await limiter.aclose()  # the recovery task is cancelled, not left pending


async def test_a_script_error_is_reported_with_its_message() -> None:
    client = FakeRedisClient()
    client.error = ResponseError("ERR user_script:3: bad argument")
    redis = RedisRateLimiter(client)  # type: ignore[arg-type]

    with pytest.raises(Exception, match="bad argument") as raised:
        await redis.acquire(chat_limits())

    assert type(raised.value).__name__ == "CacheUnavailable"


async def test_without_redis_the_buckets_are_in_memory_and_health_says_unavailable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    limiter = FallbackRateLimiter(None, MemoryRateLimiter(clock=Clock()))

    assert await acquire_many(limiter, chat_limits(), 3) == [True, True, False]
    assert await limiter.status() == "unavailable"
    assert switch_lines(caplog) == []
    await limiter.aclose()


async def test_no_limits_need_no_redis() -> None:
    client = FakeRedisClient()
    client.error = RedisConnectionError("refused")
    limiter = fallback(client)

    assert await limiter.acquire([]) == Decision.allow()
    assert await limiter.acquire([Limit("chat", "k", Bucket(1.0, 1.0))]) == Decision.allow()
    assert client.scripts == []
    await limiter.aclose()
