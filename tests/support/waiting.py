"""The one way tests wait for something that offers no event to await (a database row, a process coming
up, a counter in another task): poll briefly, with a bound, and fail with ``TimeoutError`` past it."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def eventually(check: Callable[[], Any], bound: float = 20.0, every: float = 0.05) -> Any:
    """Wait until ``check()`` (plain, or returning an awaitable) gives something truthy; return it."""
    async with asyncio.timeout(bound):
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(every)


def blocking_eventually(check: Callable[[], T], bound: float, every: float = 0.05) -> T:
    """``eventually`` for code outside an event loop (fixtures that start processes)."""
    deadline = time.monotonic() + bound
    while not (result := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {bound:g}s")
        time.sleep(every)
    return result
