"""Brute-force brake for password sign-ins: failed attempts per email address and per client address.

GoTrue itself limits ``/token`` per client address over all requests (``GOTRUE_RATE_LIMIT_TOKEN_REFRESH``);
this double counts only failures, per email and per address, in a sliding window, and refuses further
password sign-ins for that key with GoTrue's 429 ``over_request_rate_limit``. Unknown and known
addresses count alike, so the brake says nothing about which accounts exist. Counters live in
memory: nothing is written to the database, and a restart forgets them.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_KEYS = 10_000  # bounded memory: the least recently failed keys are forgotten first


class SlidingCounter:
    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def exhausted(self, key: str) -> bool:
        hits = self._prune(key)
        return hits is not None and len(hits) >= self.limit

    def hit(self, key: str) -> None:
        hits = self._prune(key)
        if hits is None:
            hits = self._hits[key] = deque()
        hits.append(self.clock())
        self._hits.move_to_end(key)
        while len(self._hits) > MAX_KEYS:
            self._hits.popitem(last=False)

    def _prune(self, key: str) -> deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        horizon = self.clock() - self.window
        while hits and hits[0] <= horizon:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits


class FailedSignIns:
    def __init__(
        self, per_email: int, per_address: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.emails = SlidingCounter(per_email, window, clock)
        self.addresses = SlidingCounter(per_address, window, clock)

    def refused(self, email: str, address: str) -> bool:
        return self.emails.exhausted(email.lower()) or self.addresses.exhausted(address)

    def failed(self, email: str, address: str) -> None:
        self.emails.hit(email.lower())
        self.addresses.hit(address)
