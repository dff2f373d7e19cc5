"""Supabase Realtime as a wake-up call: the listener's inbox hints and the API's reply waiter.

Realtime never replays what it missed and a reconnect may drop a subscription, so nothing here is
the source of truth: the inbox only says "look now" (the listener sweeps the table anyway), and a
waiter that hears nothing falls back to reading the row when its time is up.
realtime-py calls callbacks synchronously: they only set futures or call the given hooks.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from realtime import AsyncRealtimeChannel, RealtimeSubscribeStates
from realtime.types import PostgresChangesPayload, RealtimePostgresChangesListenEvent
from supabase import AsyncClient

logger = logging.getLogger(__name__)

SUBSCRIBED_TO_POSTGRES = "Subscribed to PostgreSQL"
RECONNECT_EVERY = 5.0  # how often a subscription whose socket is down tries to connect again
TERMINAL_STATES = frozenset({"answered", "handoff", "failed"})


class _Subscription:
    """One channel; ``on_ready`` runs each time Realtime confirms the Postgres subscription."""

    def __init__(
        self, client: AsyncClient, topic: str, on_ready: Callable[[], None], reconnect_every: float = RECONNECT_EVERY
    ) -> None:
        self._client = client
        self._topic = topic
        self._on_ready = on_ready
        self._ready = asyncio.Event()
        self._channel: AsyncRealtimeChannel | None = None
        self._joined = False
        self._reconnect_every = reconnect_every
        self._watchdog: asyncio.Task[None] | None = None

    def channel(self) -> AsyncRealtimeChannel:
        self._channel = self._client.channel(self._topic)
        self._channel.on_system(self._system)
        return self._channel

    async def subscribe(self, within: float) -> bool:
        """Join; True when Postgres changes flow ``within`` seconds (the sweep covers the gap otherwise)."""
        assert self._channel is not None
        self._watchdog = asyncio.create_task(self._watch())
        try:
            await self._channel.subscribe(self._state)
        except Exception as exc:  # realtime-py gives up connecting after its retries: carry on without it
            logger.warning("realtime: %s could not connect (%r); relying on the sweep", self._topic, exc)
            return False
        self._joined = True
        try:
            await asyncio.wait_for(self._ready.wait(), within)
        except TimeoutError:
            logger.warning("realtime: %s not confirmed within %.0fs; relying on the sweep", self._topic, within)
            return False
        return True

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        if self._channel is not None:
            await self._client.remove_channel(self._channel)
            self._channel = None

    async def _watch(self) -> None:
        """realtime-py stops reconnecting after its few retries (about 15 s) and never tries again: take over."""
        while True:
            await asyncio.sleep(self._reconnect_every)
            if self._client.realtime.is_connected:
                continue
            try:
                if self._joined:
                    await self._client.realtime.connect()  # rejoins the errored channel: on_ready runs again
                else:
                    assert self._channel is not None
                    await self._channel.subscribe(self._state)  # the first join never got through
                    self._joined = True
            except Exception as exc:
                logger.warning("realtime: %s still cannot connect (%r); the sweep keeps work moving", self._topic, exc)
            else:
                logger.info("realtime: %s connected again", self._topic)

    def _system(self, payload: Any) -> None:
        if getattr(payload, "message", None) == SUBSCRIBED_TO_POSTGRES:
            logger.info("realtime: %s subscribed to PostgreSQL changes", self._topic)
            self._ready.set()
            self._on_ready()

    def _state(self, state: RealtimeSubscribeStates, error: Exception | None) -> None:
        if state != RealtimeSubscribeStates.SUBSCRIBED:
            logger.warning("realtime: %s is %s (%s); the sweep keeps work moving", self._topic, state.value, error)
        self._on_ready()  # every (re)join or drop: look at the table now rather than wait for the timer


class InboxFeed:
    """New inbound messages → ``on_message(id)``; every (re)subscription → ``on_ready()``."""

    def __init__(
        self,
        client: AsyncClient,
        on_message: Callable[[str], None],
        on_ready: Callable[[], None],
        reconnect_every: float = RECONNECT_EVERY,
    ) -> None:
        self._on_message = on_message
        self._subscription = _Subscription(client, "neiromatrius-inbox", on_ready, reconnect_every)

    async def start(self, within: float = 10.0) -> bool:
        channel = self._subscription.channel()
        channel.on_postgres_changes(
            RealtimePostgresChangesListenEvent.Insert,
            schema="public",
            table="messages",
            filter="direction=eq.inbound",
            callback=self._insert,
        )
        return await self._subscription.subscribe(within)

    async def stop(self) -> None:
        await self._subscription.close()

    def _insert(self, payload: PostgresChangesPayload) -> None:
        record = _record(payload)
        if "id" in record:
            self._on_message(str(record["id"]))


class RealtimeReplyWaiter:
    """The ``ReplyWaiter`` port: one shared subscription to inbound messages reaching a final state.

    The filter leaves every other change on the server: the reply row lands in the same transaction
    as the message's final state, so one event per message is all a waiting request needs.
    """

    def __init__(self, client: AsyncClient, remember: int = 10_000) -> None:
        self._subscription = _Subscription(client, "neiromatrius-replies", lambda: None)
        self._waiters: dict[str, list[asyncio.Future[bool]]] = {}
        # Finished ids nobody waited for yet: the reply may land before the request starts waiting.
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._remember = remember

    async def start(self, within: float = 10.0) -> bool:
        channel = self._subscription.channel()
        channel.on_postgres_changes(
            RealtimePostgresChangesListenEvent.Update,
            schema="public",
            table="messages",
            filter=f"state=in.({','.join(sorted(TERMINAL_STATES))})",
            callback=self._update,
        )
        return await self._subscription.subscribe(within)

    async def stop(self) -> None:
        await self._subscription.close()
        for futures in self._waiters.values():
            for future in futures:
                future.cancel()

    async def wait(self, message_id: str, within: float) -> bool:
        if message_id in self._finished:
            return True
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(message_id, []).append(future)
        try:
            return await asyncio.wait_for(future, within)
        except TimeoutError:
            return False
        finally:
            futures = self._waiters.get(message_id, [])
            if future in futures:
                futures.remove(future)
            if not futures:
                self._waiters.pop(message_id, None)

    def _update(self, payload: PostgresChangesPayload) -> None:
        record = _record(payload)
        if record.get("state") in TERMINAL_STATES and "id" in record:
            self._done(str(record["id"]))

    def _done(self, message_id: str) -> None:
        futures = self._waiters.pop(message_id, [])
        for future in futures:
            if not future.done():
                future.set_result(True)
        if not futures:
            self._finished[message_id] = None
            while len(self._finished) > self._remember:
                self._finished.popitem(last=False)


def _record(payload: PostgresChangesPayload) -> dict[str, Any]:
    data: Any = payload.get("data") or {}
    record = data.get("record") if isinstance(data, dict) else None
    return record if isinstance(record, dict) else {}
