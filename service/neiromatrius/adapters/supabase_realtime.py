"""Supabase Realtime as a wake-up call: the listener's inbox hints and the API's reply waiter.

Realtime never replays what it missed and a reconnect may drop a subscription, so nothing here is
the source of truth: the inbox only says "look now" (the listener sweeps the table anyway), and a
waiter that hears nothing falls back to reading the row when its time is up.

A (re)join's ``SUBSCRIBED`` is not the moment events start: Supabase documents that changes made
just after it may be missed until the ``system`` message for ``postgres_changes`` says ``ok``
("Subscribed to PostgreSQL"). So a subscription counts as live only from that message until the
next state change, and what it may have missed meanwhile is looked up when it goes live: the
listener sweeps, the reply waiter re-reads the messages it waits for.
realtime-py calls callbacks synchronously: they only set futures or call the given hooks.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from realtime import AsyncRealtimeChannel, RealtimeSubscribeStates
from realtime.types import PostgresChangesPayload, RealtimePostgresChangesListenEvent
from supabase import AsyncClient

logger = logging.getLogger(__name__)

SUBSCRIBED_TO_POSTGRES = "Subscribed to PostgreSQL"
RECONNECT_EVERY = 5.0  # how often a subscription whose socket is down tries to connect again
REPLY_WAITER_LINGER = 30.0  # the reply waiter leaves Realtime after this long with no request waiting
# The bot's part is over: the API's caller gets what there is (a draft waits for a person, like a handoff).
TERMINAL_STATES = frozenset({"answered", "draft", "handoff", "failed"})


class _Subscription:
    """One channel. ``on_ready`` runs on every (re)join, drop and confirmation; ``on_live`` each time
    Realtime confirms the Postgres subscription (the ``system`` ``ok``), when events become reliable.

    A channel the server closes is subscribed again under a fresh topic name. realtime-py speaks the
    V1 protocol, whose frames carry no join ref, so the ``phx_close`` Phoenix sends for a replaced
    join (realtime-py re-sends a join whose answer is late) reaches the channel that replaced it and
    makes realtime-py forget that channel: rejoining the same topic would be closed the same way.
    """

    def __init__(
        self,
        client: AsyncClient,
        topic: str,
        on_ready: Callable[[], None],
        configure: Callable[[AsyncRealtimeChannel], None],
        reconnect_every: float = RECONNECT_EVERY,
        on_live: Callable[[], None] | None = None,
    ) -> None:
        self._client = client
        self._topic = topic
        self._on_ready = on_ready
        self._configure = configure
        self._on_live = on_live
        self._ready = asyncio.Event()  # set while the Postgres subscription is confirmed
        self._channel: AsyncRealtimeChannel | None = None
        self._joined = False
        self._generation = 0
        self._closed_by_server = False
        self._closing = False
        self._reconnect_every = reconnect_every
        self._watchdog: asyncio.Task[None] | None = None

    @property
    def topic(self) -> str:
        return self._topic if self._generation == 0 else f"{self._topic}-{self._generation}"

    def channel(self) -> AsyncRealtimeChannel:
        self._channel = self._client.channel(self.topic)
        self._channel.on_system(self._system)
        self._configure(self._channel)
        return self._channel

    async def subscribe(self, within: float) -> bool:
        """Join; True when Postgres changes flow ``within`` seconds (the sweep covers the gap otherwise)."""
        channel = self.channel()
        self._watchdog = asyncio.create_task(self._watch())
        try:
            await channel.subscribe(self._state)
        except Exception as exc:  # realtime-py gives up connecting after its retries: carry on without it
            logger.warning("realtime: %s could not connect (%r); relying on the sweep", self.topic, exc)
            return False
        self._joined = True
        try:
            await asyncio.wait_for(self._ready.wait(), within)
        except TimeoutError:
            logger.warning("realtime: %s not confirmed within %.0fs; relying on the sweep", self.topic, within)
            return False
        return True

    async def close(self) -> None:
        self._closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        if self._channel is not None:
            await self._client.remove_channel(self._channel)
            self._channel = None

    async def _watch(self) -> None:
        """realtime-py stops reconnecting after its few retries (about 15 s) and never tries again, and
        never rejoins a channel the server closed: take over both."""
        while True:
            await asyncio.sleep(self._reconnect_every)
            if self._client.realtime.is_connected:
                if self._closed_by_server:
                    await self._resubscribe()
                continue
            try:
                if self._joined:
                    await self._client.realtime.connect()  # rejoins the errored channel: on_ready runs again
                else:
                    assert self._channel is not None
                    await self._channel.subscribe(self._state)  # the first join never got through
                    self._joined = True
            except Exception as exc:
                logger.warning("realtime: %s still cannot connect (%r); the sweep keeps work moving", self.topic, exc)
            else:
                logger.info("realtime: %s connected again", self.topic)

    async def _resubscribe(self) -> None:
        self._closed_by_server = False
        old_topic = self._channel.topic if self._channel is not None else None
        self._generation += 1
        channel = self.channel()
        try:
            await channel.subscribe(self._state)
        except Exception as exc:
            self._closed_by_server = True  # try again on the next round
            logger.warning("realtime: %s could not subscribe again (%r); the sweep keeps work moving", self.topic, exc)
            return
        logger.info("realtime: %s subscribed again after the server closed the channel", self.topic)
        if old_topic is not None:
            # The server may still hold a channel on the old topic, delivering: leave it only now that the new
            # one is registered, so no change falls between them. Its answer and close reach no channel here.
            leave: dict[str, Any] = {
                "topic": old_topic,
                "event": "phx_leave",
                "payload": {},
                "ref": None,
                "join_ref": None,
            }
            with suppress(Exception):
                await self._client.realtime.send(leave)

    @property
    def live(self) -> bool:
        return self._ready.is_set()

    def _system(self, payload: Any) -> None:
        if getattr(payload, "message", None) == SUBSCRIBED_TO_POSTGRES and getattr(payload, "status", "ok") == "ok":
            logger.info("realtime: %s subscribed to PostgreSQL changes", self.topic)
            self._ready.set()
            if self._on_live is not None:
                self._on_live()
            self._on_ready()

    def _state(self, state: RealtimeSubscribeStates, error: Exception | None) -> None:
        # A (re)join or a drop: events are not reliable again until the next "Subscribed to PostgreSQL".
        self._ready.clear()
        if state == RealtimeSubscribeStates.CLOSED and not self._closing:
            self._closed_by_server = True
        if state != RealtimeSubscribeStates.SUBSCRIBED:
            logger.warning("realtime: %s is %s (%s); the sweep keeps work moving", self.topic, state.value, error)
        self._on_ready()  # every (re)join or drop: look at the table now rather than wait for the timer


class InboxFeed:
    """Customer messages to claim → ``on_message(id)``: new ones, and ones that became pending again (the
    bot handed a conversation back, a released lease). Every (re)subscription → ``on_ready()``. With
    ``on_categories``, any change to the ``categories`` table calls it (the listener reloads them)."""

    def __init__(
        self,
        client: AsyncClient,
        on_message: Callable[[str], None],
        on_ready: Callable[[], None],
        reconnect_every: float = RECONNECT_EVERY,
        on_categories: Callable[[], None] | None = None,
    ) -> None:
        self._on_message = on_message
        self._on_categories = on_categories
        self._subscription = _Subscription(client, "neiromatrius-inbox", on_ready, self._bind, reconnect_every)

    async def start(self, within: float = 10.0) -> bool:
        return await self._subscription.subscribe(within)

    def _bind(self, channel: AsyncRealtimeChannel) -> None:
        channel.on_postgres_changes(
            RealtimePostgresChangesListenEvent.Insert,
            schema="public",
            table="messages",
            filter="direction=eq.inbound",
            callback=self._message,
        )
        # Only inbound messages have a state; the filter keeps the pipeline's own updates on the server.
        channel.on_postgres_changes(
            RealtimePostgresChangesListenEvent.Update,
            schema="public",
            table="messages",
            filter="state=eq.pending",
            callback=self._message,
        )
        if self._on_categories is not None:
            channel.on_postgres_changes(
                RealtimePostgresChangesListenEvent.All,
                schema="public",
                table="categories",
                callback=self._categories,
            )

    async def stop(self) -> None:
        await self._subscription.close()

    def _message(self, payload: PostgresChangesPayload) -> None:
        record = _record(payload)
        if "id" in record:
            self._on_message(str(record["id"]))

    def _categories(self, payload: PostgresChangesPayload) -> None:
        assert self._on_categories is not None
        self._on_categories()


class RealtimeReplyWaiter:
    """The ``ReplyWaiter`` port: one shared subscription to inbound messages reaching a final state.

    The filter leaves every other change on the server: the reply row lands in the same transaction
    as the message's final state, so one event per message is all a waiting request needs. Events
    count only while the subscription is live; each time it goes live, ``is_final`` (a read of the
    row) settles the waits whose message finished while it was not.

    The subscription is held only while requests wait, and ``linger`` seconds after the last: an API
    whose callers do not wait (``Prefer: respond-async``, Telegram) is not sent an event per message it
    would only throw away. A wait that finds it closed opens it again; going live settles that wait too.
    """

    def __init__(
        self,
        client: AsyncClient,
        remember: int = 10_000,
        is_final: Callable[[str], Awaitable[bool]] | None = None,
        linger: float = REPLY_WAITER_LINGER,
    ) -> None:
        self._client = client
        self._opened = 0
        self._subscription: _Subscription | None = None
        self._opening: asyncio.Task[bool] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._linger = linger
        self._is_final = is_final
        self._lookups: set[asyncio.Task[None]] = set()
        self._waiters: dict[str, list[asyncio.Future[bool]]] = {}
        # Finished ids nobody waited for yet: the reply may land before the request starts waiting.
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._remember = remember

    async def start(self, within: float = 10.0) -> bool:
        """Subscribe now, so the first callers that wait after a start need not wait for the join."""
        result = await self._open(within)
        self._settle_idle()
        return result

    def _bind(self, channel: AsyncRealtimeChannel) -> None:
        channel.on_postgres_changes(
            RealtimePostgresChangesListenEvent.Update,
            schema="public",
            table="messages",
            filter=f"state=in.({','.join(sorted(TERMINAL_STATES))})",
            callback=self._update,
        )

    async def _open(self, within: float = 10.0) -> bool:
        if self._subscription is not None:
            return self._subscription.live
        topic = "neiromatrius-replies" if self._opened == 0 else f"neiromatrius-replies-{self._opened}"
        self._opened += 1
        self._subscription = _Subscription(self._client, topic, lambda: None, self._bind, on_live=self._went_live)
        return await self._subscription.subscribe(within)

    async def _close(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await subscription.close()
            logger.info("realtime: %s left, no request waiting for a reply", subscription.topic)

    def _demand(self) -> None:
        """A request waits: make sure the subscription is there or on its way."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._closing is not None or self._opening is not None or self._subscription is not None:
            return  # open, opening, or closing (which opens again when it is done, since someone waits)
        self._opening = asyncio.get_running_loop().create_task(self._open())
        self._opening.add_done_callback(self._opened_now)

    def _opened_now(self, task: asyncio.Task[bool]) -> None:
        self._opening = None
        if not task.cancelled() and task.exception() is not None:
            logger.warning("realtime: the reply waiter could not subscribe: %r", task.exception())
        self._settle_idle()

    def _settle_idle(self) -> None:
        """With nobody waiting, leave after ``linger`` seconds (a timer, cancelled by the next wait)."""
        if self._waiters or self._idle is not None or self._subscription is None or self._opening is not None:
            return
        self._idle = asyncio.get_running_loop().call_later(self._linger, self._leave)

    def _leave(self) -> None:
        self._idle = None
        if self._waiters or self._closing is not None:
            return
        self._closing = asyncio.get_running_loop().create_task(self._close())
        self._closing.add_done_callback(self._closed_now)

    def _closed_now(self, _task: asyncio.Task[None]) -> None:
        self._closing = None
        if self._waiters:
            self._demand()

    async def stop(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        for task in (self._opening, self._closing):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        await self._close()
        for task in list(self._lookups):
            task.cancel()
        for futures in self._waiters.values():
            for future in futures:
                future.cancel()

    async def wait(self, message_id: str, within: float) -> bool:
        if message_id in self._finished:
            return True
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(message_id, []).append(future)
        self._demand()
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
            self._settle_idle()

    @property
    def live(self) -> bool:
        return self._subscription is not None and self._subscription.live

    def _went_live(self) -> None:
        if self._is_final is None or not self._waiters:
            return
        task = asyncio.get_running_loop().create_task(self._look_up(list(self._waiters)))
        self._lookups.add(task)
        task.add_done_callback(self._lookups.discard)

    async def _look_up(self, message_ids: list[str]) -> None:
        """The messages waited for while events were not reliable: any that finished meanwhile is done."""
        assert self._is_final is not None
        for message_id in message_ids:
            if message_id not in self._waiters:
                continue
            try:
                final = await self._is_final(message_id)
            except Exception as exc:  # the wait still ends on its own bound and the route reads the row
                logger.warning("realtime: could not look up message %s after resubscribing: %r", message_id, exc)
                continue
            if final:
                self._done(message_id)

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
