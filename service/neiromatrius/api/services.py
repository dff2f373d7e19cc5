"""``ApiServices``: what the API needs from the outside world, built by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..core.models import QueueStats
from ..core.ports import MessageIntake, RateLimiter, ReplyWaiter, UrlGuard
from ..metrics import Metrics


@dataclass(frozen=True)
class ApiServices:
    """What the API needs from the outside world, built by the composition root."""

    store: MessageIntake
    waiter: ReplyWaiter
    url_guard: UrlGuard
    limiter: RateLimiter  # token buckets on intake, shared through Redis when it answers
    cache_status: Callable[[], Awaitable[str]]  # "ok" (Redis answers) or "unavailable" (buckets in memory)
    metrics: Metrics | None = None  # /metrics and the request series, when given
    queue_stats: Callable[[], Awaitable[QueueStats]] | None = None  # the queue gauges, read at scrape time
    on_startup: Callable[[], Awaitable[None]] | None = None
    on_shutdown: Callable[[], Awaitable[None]] | None = None
    startup_timeout: float = 30.0  # how long start-up waits for the database to answer
