"""The Redis rate limiter against a real redis-server: replicas share buckets, the Lua script takes tokens
atomically under concurrency, idle keys expire, and the fallback rides out a killed server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from neiromatrius.adapters.rate_limiters import (
    KEY_PREFIX,
    REDIS_WITHIN_SECONDS,
    FallbackRateLimiter,
    MemoryRateLimiter,
    RedisRateLimiter,
)
from neiromatrius.core.ratelimit import Bucket, Decision, IntakeLimits, Limit
from tests.support.redis_server import RedisServer
from tests.support.waiting import eventually

BOUND = 10.0  # seconds a test waits for what should happen at once

MakeLimiter = Callable[..., RedisRateLimiter]


@pytest.fixture
async def make_limiter(redis_server: RedisServer) -> AsyncIterator[MakeLimiter]:
    """RedisRateLimiters on clients of their own, as separate API replicas have; closed afterwards."""
    made: list[RedisRateLimiter] = []

    def make(within: float = REDIS_WITHIN_SECONDS) -> RedisRateLimiter:
        limiter = RedisRateLimiter.from_url(redis_server.url, within=within)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.aclose()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A plain client, to look at the keys as they are."""
    client = Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


def chat(chat_id: str = "c1", per_minute: int = 3, client: int = 0) -> list[Limit]:
    return IntakeLimits.per_minute(client=client, chat=per_minute).for_message("client-1", "test", chat_id)


async def test_two_replicas_share_one_bucket(make_limiter: MakeLimiter) -> None:
    first, second = make_limiter(), make_limiter()

    decisions = [await limiter.acquire(chat()) for limiter in (first, second, first, second)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1].scope == "chat"
    assert 19.0 < decisions[-1].retry_after <= 20.0  # 3 a minute: 20 s for a token, less what has refilled since


async def test_concurrent_acquires_get_exactly_the_capacity(make_limiter: MakeLimiter) -> None:
    # What is checked is the script's atomicity, not Redis's latency: on a loaded 2-core machine 60 commands
    # at once can take longer than the 0.25 s after which the API counts Redis as down (tested elsewhere).
    replicas = [make_limiter(within=BOUND) for _ in range(4)]
    limits = [Limit("chat", "concurrent", Bucket(capacity=10.0, refill_per_second=0.001))]

    decisions = await asyncio.gather(*(replicas[i % 4].acquire(limits) for i in range(60)))

    assert sum(d.allowed for d in decisions) == 10


async def test_both_buckets_are_taken_together_or_not_at_all(make_limiter: MakeLimiter, redis: Redis) -> None:
    limiter = make_limiter()
    limits = IntakeLimits.per_minute(client=3, chat=2)

    in_a = [await limiter.acquire(limits.for_message("x", "test", "a")) for _ in range(3)]
    client_key = KEY_PREFIX + limits.for_message("x", "test", "a")[0].key
    tokens_after_refusal = float(await redis.hget(client_key, "tokens") or "nan")
    in_b = [await limiter.acquire(limits.for_message("x", "test", "b")) for _ in range(2)]

    assert [d.allowed for d in in_a] == [True, True, False]
    assert in_a[-1].scope == "chat"
    assert 1.0 <= tokens_after_refusal < 1.1  # two taken; the refused third took none (plus a little refill)
    assert [d.allowed for d in in_b] == [True, False]
    assert in_b[-1].scope == "client"


async def test_bucket_keys_expire_once_they_would_be_full_and_carry_the_servers_time(
    make_limiter: MakeLimiter, redis: Redis
) -> None:
    limiter = make_limiter()
    limits = chat(per_minute=3, client=120)

    await limiter.acquire(limits)

    keys = sorted(await redis.keys(KEY_PREFIX + "*"))
    assert keys == sorted(KEY_PREFIX + limit.key for limit in limits)
    for key in keys:
        assert 60_000 < await redis.pttl(key) <= 61_000
    seconds, micros = await redis.time()
    updated = float(await redis.hget(keys[0], "updated") or "nan")
    assert seconds + micros / 1e6 - 5 < updated <= seconds + micros / 1e6


async def test_a_killed_redis_falls_back_to_memory_and_comes_back_after_a_restart(
    redis_server: RedisServer, redis: Redis
) -> None:
    limiter = FallbackRateLimiter(
        RedisRateLimiter.from_url(redis_server.url), MemoryRateLimiter(), first_retry=0.05, max_retry=0.2
    )
    try:
        assert await limiter.status() == "ok"
        assert (await limiter.acquire(chat("shared"))).allowed

        redis_server.kill()
        async with asyncio.timeout(BOUND):
            during = [await limiter.acquire(chat("local")) for _ in range(4)]
            status_during = await limiter.status()

        assert [d.allowed for d in during] == [True, True, True, False]  # memory's own buckets, same limits
        assert status_during == "unavailable"

        redis_server.restart()

        async def counting_in_redis() -> bool:
            await limiter.acquire(chat("after"))  # no status() here: the background probe must find Redis
            return bool(await redis.exists(KEY_PREFIX + chat("after")[0].key))

        await eventually(counting_in_redis)
        assert await limiter.status() == "ok"
        assert await limiter.acquire(chat("shared")) == Decision.allow()  # the restart lost the old buckets
    finally:
        await limiter.aclose()
