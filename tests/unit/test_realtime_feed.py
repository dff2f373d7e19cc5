"""The Realtime adapters' own logic, with a fake channel: hints, the reply waiter's race, a dead socket, and
taking over reconnection once realtime-py has given up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from realtime import RealtimeSubscribeStates

from neiromatrius.adapters.supabase_realtime import InboxFeed, RealtimeReplyWaiter


class FakeChannel:
    def __init__(self, fail: Exception | None, topic: str = "") -> None:
        self.fail = fail
        self.topic = f"realtime:{topic}"
        self.system: list[Callable[[Any], None]] = []
        self.changes: list[tuple[str, str, Callable[[Any], None]]] = []
        self.filters: list[str | None] = []

    def on_system(self, callback: Callable[[Any], None]) -> FakeChannel:
        self.system.append(callback)
        return self

    def on_postgres_changes(
        self, event: Any, callback: Callable[[Any], None], table: str, filter: str | None = None, **_: Any
    ) -> FakeChannel:
        self.changes.append((str(event.value), table, callback))
        self.filters.append(filter)
        return self

    async def subscribe(self, callback: Callable[..., None]) -> None:
        if self.fail is not None:
            raise self.fail
        self.on_state = callback
        callback(RealtimeSubscribeStates.SUBSCRIBED, None)
        self.subscribed()

    def closed_by_server(self) -> None:
        """A ``phx_close`` realtime-py took for this channel: it forgets the channel and reports CLOSED."""
        self.on_state(RealtimeSubscribeStates.CLOSED, None)

    def rejoined(self) -> None:
        """A reconnect's join reply: SUBSCRIBED, with the Postgres subscription not confirmed yet."""
        self.on_state(RealtimeSubscribeStates.SUBSCRIBED, None)

    def subscribed(self) -> None:
        for handler in self.system:
            handler(SimpleNamespace(message="Subscribed to PostgreSQL"))

    def emit(self, event: str, table: str, record: dict[str, Any]) -> None:
        for kind, name, callback in self.changes:
            if (kind, name) == (event, table):
                callback({"data": {"record": record}, "ids": []})


class FakeSocket:
    """realtime-py's client: connected, or given up, in which case ``connect()`` fails ``failures`` times first."""

    def __init__(self) -> None:
        self._connected = True
        self.failures = 0
        self.attempts = 0
        self.checks = 0  # how often the watchdog looked at the socket
        self._when_checked: dict[int, asyncio.Event] = {}
        self.on_connect: Callable[[], None] = lambda: None
        self.sent: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def is_connected(self) -> bool:
        self.checks += 1
        if (event := self._when_checked.get(self.checks)) is not None:
            event.set()
        return self._connected

    @is_connected.setter
    def is_connected(self, connected: bool) -> None:
        self._connected = connected

    def when_checked(self, times: int) -> asyncio.Event:
        """Set once the socket has been looked at ``times`` times."""
        return self._when_checked.setdefault(times, asyncio.Event())

    async def connect(self) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionRefusedError(111, "refused")
        self.is_connected = True
        self.on_connect()


class FakeClient:
    def __init__(self, fail: Exception | None = None) -> None:
        self.channels: list[FakeChannel] = []
        self.fail = fail
        self.realtime = FakeSocket()
        self.second_channel = asyncio.Event()

    def channel(self, topic: str) -> FakeChannel:
        self.channels.append(FakeChannel(self.fail, topic))
        if len(self.channels) == 2:
            self.second_channel.set()
        return self.channels[-1]

    async def remove_channel(self, channel: FakeChannel) -> None:
        self.channels.remove(channel)


async def test_the_inbox_hints_new_inbound_messages_and_each_subscription() -> None:
    client, ids, ready = FakeClient(), [], []
    feed = InboxFeed(client, ids.append, lambda: ready.append(True))  # type: ignore[arg-type]

    assert await feed.start(within=1)
    client.channels[0].emit("INSERT", "messages", {"id": "m1", "direction": "inbound"})
    assert ids == ["m1"]
    assert ready  # the subscription itself asks for a sweep


async def test_a_realtime_that_cannot_connect_leaves_the_sweep_to_do_the_work() -> None:
    feed = InboxFeed(FakeClient(fail=ConnectionRefusedError(111, "refused")), lambda _: None, lambda: None)  # type: ignore[arg-type]
    assert await feed.start(within=1) is False


async def test_the_waiter_hears_a_reply_that_lands_while_it_waits() -> None:
    client = FakeClient()
    waiter = RealtimeReplyWaiter(client)  # type: ignore[arg-type]
    await waiter.start(within=1)

    # Runs once wait() has registered and suspended: the message is answered while it waits.
    asyncio.get_running_loop().call_soon(
        client.channels[0].emit, "UPDATE", "messages", {"id": "m1", "state": "answered"}
    )
    assert await waiter.wait("m1", within=10) is True
    assert "m1" not in waiter._finished  # it went to the waiter, not to the memory of unclaimed replies


async def test_the_waiter_asks_the_server_only_for_messages_reaching_a_final_state() -> None:
    client = FakeClient()
    await RealtimeReplyWaiter(client).start(within=1)  # type: ignore[arg-type]

    [(event, table, _)] = client.channels[0].changes
    assert (event, table) == ("UPDATE", "messages")
    assert client.channels[0].filters == ["state=in.(answered,draft,failed,handoff)"]


async def test_the_waiter_remembers_a_reply_that_landed_before_anyone_waited() -> None:
    client = FakeClient()
    waiter = RealtimeReplyWaiter(client)  # type: ignore[arg-type]
    await waiter.start(within=1)

    client.channels[0].emit("UPDATE", "messages", {"id": "m2", "state": "handoff"})
    client.channels[0].emit("UPDATE", "messages", {"id": "m3", "state": "processing"})
    assert await waiter.wait("m2", within=10) is True
    assert await waiter.wait("m3", within=0.01) is False  # not finished: the wait runs out


async def test_once_realtime_py_gives_up_reconnecting_the_inbox_connects_again_and_asks_for_a_sweep() -> None:
    client, ready = FakeClient(), asyncio.Event()
    feed = InboxFeed(client, lambda _: None, ready.set, reconnect_every=0.01)  # type: ignore[arg-type]
    assert await feed.start(within=1)
    ready.clear()

    client.realtime.is_connected, client.realtime.failures = False, 2  # its retries are spent; two more fail
    client.realtime.on_connect = client.channels[0].subscribed  # reconnecting rejoins the channel
    await asyncio.wait_for(ready.wait(), 5)

    assert client.realtime.attempts == 3
    assert client.realtime.is_connected
    await feed.stop()


async def test_an_inbox_whose_first_join_failed_subscribes_once_realtime_answers() -> None:
    client, ready = FakeClient(fail=ConnectionRefusedError(111, "refused")), asyncio.Event()
    feed = InboxFeed(client, lambda _: None, ready.set, reconnect_every=0.01)  # type: ignore[arg-type]
    client.realtime.is_connected = False
    assert await feed.start(within=1) is False

    client.channels[0].fail = None  # Realtime is back
    await asyncio.wait_for(ready.wait(), 5)
    await feed.stop()


async def test_a_connected_inbox_never_reconnects_and_stops_watching_when_stopped() -> None:
    client = FakeClient()
    feed = InboxFeed(client, lambda _: None, lambda: None, reconnect_every=0.01)  # type: ignore[arg-type]
    tasks_before = asyncio.all_tasks()
    assert await feed.start(within=1)
    # Several watchdog turns, on purpose: nothing may happen in them.
    await asyncio.wait_for(client.realtime.when_checked(client.realtime.checks + 3).wait(), 5)
    await feed.stop()

    assert client.realtime.attempts == 0
    assert asyncio.all_tasks() == tasks_before  # stopped: the watchdog is gone with the feed


async def test_events_count_only_from_the_postgres_confirmation_not_from_subscribed() -> None:
    client = FakeClient()
    waiter = RealtimeReplyWaiter(client)  # type: ignore[arg-type]
    await waiter.start(within=1)
    assert waiter.live

    client.channels[0].rejoined()  # the socket came back: joined, but changes may still be missed
    assert not waiter.live
    client.channels[0].subscribed()
    assert waiter.live


async def test_going_live_again_settles_the_waits_whose_message_finished_meanwhile() -> None:
    client, looked_up = FakeClient(), []
    final = {"m1": True, "m2": False}

    async def is_final(message_id: str) -> bool:
        looked_up.append(message_id)
        return final[message_id]

    waiter = RealtimeReplyWaiter(client, is_final=is_final)  # type: ignore[arg-type]
    await waiter.start(within=1)
    client.channels[0].rejoined()
    # While the subscription was down, m1 was answered and its event is gone; m2 is still in progress.
    first = asyncio.create_task(waiter.wait("m1", within=10))
    second = asyncio.create_task(waiter.wait("m2", within=0.2))
    # Runs after both waits have registered and suspended (callbacks run in the order they were scheduled).
    asyncio.get_running_loop().call_soon(client.channels[0].subscribed)

    assert await first is True
    assert await second is False
    assert sorted(looked_up) == ["m1", "m2"]


async def test_a_channel_the_server_closed_is_subscribed_again_under_a_fresh_topic() -> None:
    client, ids = FakeClient(), []
    resubscribed = asyncio.Event()
    feed = InboxFeed(client, ids.append, lambda: None, reconnect_every=0.01)  # type: ignore[arg-type]
    assert await feed.start(within=1)
    client.realtime.on_connect = resubscribed.set  # not expected: the socket stays up

    client.channels[0].closed_by_server()
    assert not feed._subscription.live

    await asyncio.wait_for(client.second_channel.wait(), 5)
    old, new = client.channels
    assert (old.topic, new.topic) == ("realtime:neiromatrius-inbox", "realtime:neiromatrius-inbox-1")
    assert client.realtime.sent == [
        {"topic": "realtime:neiromatrius-inbox", "event": "phx_leave", "payload": {}, "ref": None, "join_ref": None}
    ]
    assert feed._subscription.live  # the new channel's own confirmation
    new.emit("INSERT", "messages", {"id": "m9", "direction": "inbound"})
    assert ids == ["m9"]
    assert not resubscribed.is_set()
    await feed.stop()
