"""Rate-limit buckets in Redis, shared by every API replica, with an in-memory fallback.

``FallbackRateLimiter`` is the one the API uses: it counts in Redis while Redis answers within a short
bound, and in this process's memory while it does not (or when no ``REDIS_URL`` is set), so a dead
Redis makes the limits per replica for a while but never stalls or fails intake. Only this module
touches redis; its exceptions become ``CacheUnavailable`` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from ..core.backoff import Backoff
from ..core.ratelimit import BucketState, Decision, Limit, take
from ..errors import CacheUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

REDIS_WITHIN_SECONDS = 0.25  # a LAN round trip is well under a millisecond; past this Redis counts as down
KEY_PREFIX = "neiromatrius:ratelimit:"
TTL_MARGIN_MS = 1000

# Takes one token from every bucket in KEYS, or from none: the arithmetic of core.ratelimit.take.
# ARGV holds capacity, refill per second and TTL (ms) for each key, in KEYS' order. The clock is the
# server's, so replicas whose clocks disagree still agree on the buckets.
TAKE_SCRIPT = """
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local levels = {}
local refused, wait = 0, -1
for i, key in ipairs(KEYS) do
  local capacity = tonumber(ARGV[3 * i - 2])
  local rate = tonumber(ARGV[3 * i - 1])
  local state = redis.call('HMGET', key, 'tokens', 'updated')
  local tokens = capacity
  if state[1] and state[2] then
    local elapsed = math.max(0, now - tonumber(state[2]))
    tokens = math.min(capacity, tonumber(state[1]) + elapsed * rate)
  end
  levels[i] = tokens
  if tokens < 1 then
    local needed = (1 - tokens) / rate
    if needed > wait then
      refused, wait = i, needed
    end
  end
end
if refused > 0 then
  return {0, refused, string.format('%.6f', wait)}
end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'tokens', string.format('%.17g', levels[i] - 1), 'updated', string.format('%.6f', now))
  redis.call('PEXPIRE', key, ARGV[3 * i])
end
return {1, 0, '0'}
"""


class RedisRateLimiter:
    """Buckets as Redis hashes, checked and taken by one Lua script (EVALSHA), so replicas share them.

    A bucket's key expires once it would be full again: an idle client costs Redis nothing.
    """

    def __init__(self, client: Redis, *, within: float = REDIS_WITHIN_SECONDS, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.within = within
        self.prefix = prefix
        self._take = client.register_script(TAKE_SCRIPT)

    @classmethod
    def from_url(cls, url: str, *, within: float = REDIS_WITHIN_SECONDS) -> RedisRateLimiter:
        """Connects lazily, on the first command. One retry: a pooled connection may be stale after a restart."""
        client = Redis.from_url(url, socket_timeout=within, socket_connect_timeout=within, retry=Retry(NoBackoff(), 1))
        return cls(client, within=within)

    async def acquire(self, limits: Sequence[Limit]) -> Decision:
        if not limits:
            return Decision.allow()
        keys = [self.prefix + limit.key for limit in limits]
        args: list[str | int] = []
        for limit in limits:
            ttl_ms = math.ceil(limit.bucket.full_after * 1000) + TTL_MARGIN_MS
            args += [repr(limit.bucket.capacity), repr(limit.bucket.refill_per_second), ttl_ms]
        allowed, refused, wait = await self._bounded(self._take(keys=keys, args=args))
        if int(allowed):
            return Decision.allow()
        return Decision.refuse(limits[int(refused) - 1].scope, float(wait))

    async def ping(self) -> None:
        await self._bounded(self.client.ping())

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _bounded(self, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.within):
                return await call
        except (RedisError, OSError, TimeoutError) as exc:
            raise CacheUnavailable(_describe(exc), retryable=True) from exc


def _describe(exc: BaseException) -> str:
    # Connection errors name host and port; only the class goes out, so nothing of REDIS_URL reaches a log.
    if isinstance(exc, ResponseError):
        return f"Redis refused the command: {exc}"
    return f"Redis did not answer: {type(exc).__name__}"


class MemoryRateLimiter:
    """Buckets in this process's memory, with the same arithmetic (``core.ratelimit.take``).

    Memory stays bounded: a bucket is forgotten once it would be full again (as a Redis key expires),
    and beyond ``max_buckets`` the least recently used are dropped, which can only make a limit kinder.
    """

    def __init__(self, *, max_buckets: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_buckets = max_buckets
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[BucketState, float]] = OrderedDict()  # key -> (state, forget at)

    def __len__(self) -> int:
        return len(self._buckets)

    async def acquire(self, limits: Sequence[Limit]) -> Decision:
        now = self._clock()
        self._evict(now)
        states = {limit.key: entry[0] for limit in limits if (entry := self._buckets.get(limit.key)) is not None}
        decision, updated = take(limits, states, now)
        for limit in limits:
            if limit.key in updated:
                self._buckets[limit.key] = (updated[limit.key], now + limit.bucket.full_after)
                self._buckets.move_to_end(limit.key)
        self._evict(now)
        return decision

    def _evict(self, now: float) -> None:
        while self._buckets:
            key, (_, forget_at) = next(iter(self._buckets.items()))
            if forget_at > now and len(self._buckets) <= self.max_buckets:
                return
            del self._buckets[key]


class FallbackRateLimiter:
    """Redis while it answers, memory while it does not; ``status()`` says which ("ok" / "unavailable").

    Every Redis call is bounded (``RedisRateLimiter.within``). When one fails, requests go to memory at
    once and a background task pings Redis with backoff until it answers again. Each switch is logged
    once; the first state is the start-up line's to report.
    """

    def __init__(
        self,
        redis: RedisRateLimiter | None,
        memory: MemoryRateLimiter,
        *,
        first_retry: float = 0.5,
        max_retry: float = 10.0,
    ) -> None:
        self.redis = redis
        self.memory = memory
        self.first_retry = first_retry
        self.max_retry = max_retry
        self._shared: bool | None = None  # None until Redis has answered or failed once
        self._recovery: asyncio.Task[None] | None = None

    async def acquire(self, limits: Sequence[Limit]) -> Decision:
        if self.redis is not None and self._shared is not False and limits:
            try:
                decision = await self.redis.acquire(limits)
            except CacheUnavailable as exc:
                self._lost(exc)
            else:
                self._found()
                return decision
        return await self.memory.acquire(limits)

    async def status(self) -> str:
        """Ask Redis now (bounded), so health and start-up report what is true, not what was last seen."""
        if self.redis is None:
            return "unavailable"
        try:
            await self.redis.ping()
        except CacheUnavailable as exc:
            self._lost(exc)
            return "unavailable"
        self._found()
        return "ok"

    async def aclose(self) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
        if self.redis is not None:
            await self.redis.aclose()

    def _lost(self, exc: CacheUnavailable) -> None:
        if self._shared is True:
            logger.warning("Rate limits: %s; counting in memory until Redis answers again", exc)
        self._shared = False
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.create_task(self._recover(), name="redis-recovery")

    def _found(self) -> None:
        if self._shared is False:
            logger.warning("Rate limits: Redis answers again; counting in Redis")
        self._shared = True

    async def _recover(self) -> None:
        assert self.redis is not None
        backoff = Backoff(self.first_retry, self.max_retry)
        while self._shared is False:
            await asyncio.sleep(backoff.next())  # backoff between probes, not synchronisation
            with contextlib.suppress(CacheUnavailable):
                await self.redis.ping()
                self._found()
