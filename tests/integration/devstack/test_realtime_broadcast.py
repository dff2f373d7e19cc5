"""Broadcast and presence between two realtime-py clients (supabase-py), with ``self`` and ``ack``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from realtime import AsyncRealtimeChannel, RealtimeSubscribeStates
from supabase import AsyncClient, acreate_client

from tests.conftest import Stack

WAIT = 10.0


def options(*, self_: bool = False, ack: bool = False, presence: bool = False) -> dict[str, Any]:
    return {
        "config": {
            "broadcast": {"ack": ack, "self": self_},
            "presence": {"key": "", "enabled": presence},
            "private": False,
        }
    }


@pytest.fixture
async def clients(stack: Stack) -> AsyncIterator[Callable[[], Any]]:
    made: list[AsyncClient] = []

    async def make() -> AsyncClient:
        client = await acreate_client(stack.url, stack.anon_key)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.remove_all_channels()


async def joined(channel: AsyncRealtimeChannel) -> AsyncRealtimeChannel:
    states: asyncio.Queue[RealtimeSubscribeStates] = asyncio.Queue()
    await channel.subscribe(lambda state, _error: states.put_nowait(state))
    assert await asyncio.wait_for(states.get(), WAIT) == RealtimeSubscribeStates.SUBSCRIBED
    return channel


async def test_broadcast_with_self_and_ack(clients: Callable[[], Any]) -> None:
    room = f"room-{uuid.uuid4().hex[:10]}"
    inbox_a: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    inbox_b: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    a = (await clients()).channel(room, options(self_=True, ack=True))
    a.on_broadcast("*", lambda m: inbox_a.put_nowait((m["event"], m["payload"])))
    b = (await clients()).channel(room, options())
    b.on_broadcast("*", lambda m: inbox_b.put_nowait((m["event"], m["payload"])))
    await joined(a)
    await joined(b)

    acked = asyncio.Event()
    push = await a.push("broadcast", {"type": "broadcast", "event": "ping", "payload": {"n": 1, "text": "привет"}})
    push.receive("ok", lambda _response: acked.set())
    await asyncio.wait_for(acked.wait(), WAIT)  # ack: true gets a reply
    assert await asyncio.wait_for(inbox_a.get(), WAIT) == ("ping", {"n": 1, "text": "привет"})  # self: true
    assert await asyncio.wait_for(inbox_b.get(), WAIT) == ("ping", {"n": 1, "text": "привет"})

    await b.send_broadcast("pong", {"n": 2})
    assert await asyncio.wait_for(inbox_a.get(), WAIT) == ("pong", {"n": 2})
    # B has self: false. A's next message is relayed after B's pong was, so B's queue proves it.
    await a.send_broadcast("ping", {"n": 3})
    assert await asyncio.wait_for(inbox_b.get(), WAIT) == ("ping", {"n": 3})
    assert inbox_b.empty()


async def test_presence_between_two_clients(clients: Callable[[], Any]) -> None:
    room = f"room-{uuid.uuid4().hex[:10]}"
    synced = asyncio.Event()
    joins: asyncio.Queue[tuple[str, list[Any]]] = asyncio.Queue()
    watcher = (await clients()).channel(room, options(presence=True))
    watcher.on_presence_sync(synced.set)
    watcher.on_presence_join(lambda key, _current, new: joins.put_nowait((key, new)))
    await joined(watcher)
    await asyncio.wait_for(synced.wait(), WAIT)  # the initial presence_state

    tracker = (await clients()).channel(room, options(presence=True))
    await joined(tracker)
    await tracker.track({"user": "u1", "status": "online"})
    key, presences = await asyncio.wait_for(joins.get(), WAIT)
    assert [(p["user"], p["status"]) for p in presences] == [("u1", "online")]
    assert presences[0]["presence_ref"]
    assert [p["user"] for p in watcher.presence_state()[key]] == ["u1"]


async def test_broadcast_over_the_http_api_reaches_subscribers(clients: Callable[[], Any]) -> None:
    room = f"room-{uuid.uuid4().hex[:10]}"
    inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    listener = (await clients()).channel(room, options())
    listener.on_broadcast("news", lambda m: inbox.put_nowait((m["event"], m["payload"])))
    await joined(listener)
    sender = (await clients()).channel(room, options())  # never subscribed: the REST endpoint needs no socket
    await sender.http_send("news", {"headline": "ёлка"})
    assert await asyncio.wait_for(inbox.get(), WAIT) == ("news", {"headline": "ёлка"})
