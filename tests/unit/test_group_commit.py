"""The store's group commit (completions, delivery records): what waits goes together, nothing waits for nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from neiromatrius.adapters.supabase_store import _GroupCommit
from neiromatrius.errors import StoreError


class HeldSender:
    """Records each batch; a batch stays on its way until released."""

    def __init__(self, fail: set[int] | None = None) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self._fail = fail or set()
        self._sent: asyncio.Queue[list[int]] = asyncio.Queue()
        self._in_flight = 0
        self.most_in_flight = 0

    async def __call__(self, items: list[dict[str, Any]]) -> list[object]:
        self.batches.append([item["n"] for item in items])
        self._sent.put_nowait(self.batches[-1])
        self._in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self._in_flight)
        try:
            await self.release.wait()
        finally:
            self._in_flight -= 1
        return [StoreError(f"bad {item['n']}") if item["n"] in self._fail else f"answer {item['n']}" for item in items]

    async def on_its_way(self) -> list[int]:
        """The next batch, once it has been handed to the sender."""
        return await asyncio.wait_for(self._sent.get(), 5)


async def first_steps() -> None:
    """One turn of the loop: the tasks created before this call run up to their first wait (their ``add``
    has put its item in line) before it returns. Not a wait for time."""
    await asyncio.sleep(0)


async def test_items_added_while_a_batch_is_on_its_way_go_together_in_the_next_up_to_the_limit() -> None:
    send = HeldSender()
    group = _GroupCommit(send, limit=3)

    first = asyncio.create_task(group.add({"n": 0}))
    assert await send.on_its_way() == [0]  # alone, it went at once
    later = [asyncio.create_task(group.add({"n": n})) for n in range(1, 6)]
    await first_steps()
    assert send.batches == [[0]]  # they wait for the batch on its way
    send.release.set()
    await asyncio.wait_for(asyncio.gather(first, *later), 5)

    assert send.batches == [[0], [1, 2, 3], [4, 5]]
    assert send.most_in_flight == 1  # one call at a time: the next batch left once the one before came back


async def test_each_caller_gets_its_own_items_answer_or_error() -> None:
    send = HeldSender(fail={2})
    send.release.set()
    group = _GroupCommit(send)

    results = await asyncio.gather(*(group.add({"n": n}) for n in range(4)), return_exceptions=True)

    assert send.batches == [[0, 1, 2, 3]]
    assert [r if isinstance(r, str) else f"{type(r).__name__}: {r}" for r in results] == [
        "answer 0", "answer 1", "StoreError: bad 2", "answer 3",
    ]  # fmt: skip


async def test_a_cancelled_caller_leaves_its_item_to_go_and_the_others_are_answered() -> None:
    send = HeldSender()
    group = _GroupCommit(send)
    first = asyncio.create_task(group.add({"n": 0}))
    await send.on_its_way()
    waiting = [asyncio.create_task(group.add({"n": n})) for n in (1, 2)]
    await first_steps()
    waiting[0].cancel()
    send.release.set()

    await asyncio.wait_for(asyncio.gather(first, waiting[1]), 5)

    assert send.batches == [[0], [1, 2]]
    assert waiting[0].cancelled()


async def test_a_sender_that_raises_or_miscounts_fails_every_caller_of_its_batch_and_the_next_batch_still_goes() -> (
    None
):
    calls: list[list[int]] = []

    async def broken(items: list[dict[str, Any]]) -> list[object]:
        calls.append([item["n"] for item in items])
        if len(calls) == 1:
            raise RuntimeError("bug")
        if len(calls) == 2:
            return []  # not one answer per item: a bug too
        return [None] * len(items)

    group = _GroupCommit(broken)
    failed = await asyncio.gather(group.add({"n": 0}), group.add({"n": 1}), return_exceptions=True)
    assert [type(r) for r in failed] == [RuntimeError, RuntimeError]

    with pytest.raises(RuntimeError, match="1 items sent, 0 answers"):
        await asyncio.wait_for(group.add({"n": 2}), 5)
    await asyncio.wait_for(group.add({"n": 3}), 5)
    assert calls == [[0, 1], [2], [3]]


@pytest.mark.parametrize("waiting", [0, 2])
async def test_cancelling_the_batch_on_its_way_cancels_its_callers_instead_of_leaving_them_waiting(
    waiting: int,
) -> None:
    send = HeldSender()
    group = _GroupCommit(send)
    callers = [asyncio.create_task(group.add({"n": 0}))]
    await send.on_its_way()
    callers += [asyncio.create_task(group.add({"n": n})) for n in range(1, waiting + 1)]
    await first_steps()

    sending = group._sending
    assert sending is not None
    sending.cancel()
    await asyncio.wait(callers, timeout=5)

    assert all(caller.cancelled() for caller in callers)
    assert group._sending is None
    send.release.set()
    await asyncio.wait_for(group.add({"n": 9}), 5)  # the next item starts a batch of its own
    assert send.batches[-1] == [9]
