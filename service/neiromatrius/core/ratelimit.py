"""Token buckets for intake: the pure arithmetic, the intake policy and the ``RateLimiter`` port.

A bucket holds up to ``capacity`` tokens and gains ``refill_per_second`` of them continuously; a request
takes one token from every bucket that applies to it, or from none: when one bucket is empty the others
keep their tokens, so a chat that is over its limit does not also spend its client's allowance.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Scope = Literal["client", "chat"]
SECONDS_PER_MINUTE = 60.0


@dataclass(frozen=True)
class Bucket:
    capacity: float
    refill_per_second: float

    @classmethod
    def per_minute(cls, allowance: int) -> Bucket | None:
        """A bucket holding one minute's allowance, refilled evenly over the minute; ``None`` when 0 (off)."""
        if allowance <= 0:
            return None
        return cls(capacity=float(allowance), refill_per_second=allowance / SECONDS_PER_MINUTE)

    @property
    def full_after(self) -> float:
        """Seconds after which an untouched bucket is full again: its state may be forgotten then."""
        return self.capacity / self.refill_per_second


@dataclass(frozen=True)
class BucketState:
    tokens: float
    updated: float  # seconds, on the clock that measured it


@dataclass(frozen=True)
class Limit:
    """One bucket a request takes from: which limit it is, whose it is, and its size."""

    scope: Scope
    key: str
    bucket: Bucket


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0  # seconds until the refusing bucket holds a whole token
    scope: Scope | None = None  # the limit that refused

    @classmethod
    def allow(cls) -> Decision:
        return cls(allowed=True)

    @classmethod
    def refuse(cls, scope: Scope, retry_after: float) -> Decision:
        return cls(allowed=False, retry_after=retry_after, scope=scope)


def level(bucket: Bucket, state: BucketState | None, now: float) -> float:
    """The tokens in the bucket at ``now``: a bucket never seen (or forgotten) is full."""
    if state is None:
        return bucket.capacity
    elapsed = max(0.0, now - state.updated)
    return min(bucket.capacity, state.tokens + elapsed * bucket.refill_per_second)


def wait_for_token(bucket: Bucket, tokens: float) -> float:
    """Seconds until a bucket holding ``tokens`` holds one whole token."""
    return max(0.0, (1.0 - tokens) / bucket.refill_per_second)


def take(
    limits: Sequence[Limit], states: Mapping[str, BucketState], now: float
) -> tuple[Decision, dict[str, BucketState]]:
    """Take one token from every bucket, or from none; return the decision and the states to store.

    When several buckets are empty, the refusal names the one that refills last, so that a caller who
    waits ``retry_after`` finds every bucket holding a token (unless others spend them meanwhile).
    """
    levels = [level(limit.bucket, states.get(limit.key), now) for limit in limits]
    refusal: Decision | None = None
    for limit, tokens in zip(limits, levels, strict=True):
        if tokens < 1.0:
            wait = wait_for_token(limit.bucket, tokens)
            if refusal is None or wait > refusal.retry_after:
                refusal = Decision.refuse(limit.scope, wait)
    if refusal is not None:
        return refusal, {}
    updated = {limit.key: BucketState(tokens - 1.0, now) for limit, tokens in zip(limits, levels, strict=True)}
    return Decision.allow(), updated


@dataclass(frozen=True)
class IntakeLimits:
    """The limits on ``POST /api/messages/``: per client, and per chat (a client's chat on one platform)."""

    client: Bucket | None
    chat: Bucket | None

    @classmethod
    def per_minute(cls, client: int, chat: int) -> IntakeLimits:
        return cls(client=Bucket.per_minute(client), chat=Bucket.per_minute(chat))

    def for_message(self, client_id: str, platform: str, chat_id: str) -> list[Limit]:
        # JSON keeps the parts apart whatever characters the ids hold ("a:b" + "c" vs "a" + "b:c").
        limits: list[Limit] = []
        if self.client is not None:
            limits.append(Limit("client", "client:" + json.dumps([client_id]), self.client))
        if self.chat is not None:
            limits.append(Limit("chat", "chat:" + json.dumps([client_id, platform, chat_id]), self.chat))
        return limits
