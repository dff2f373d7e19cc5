"""One client websocket speaking the Phoenix channel protocol, as Supabase Realtime answers it.

Messages of a socket are handled one at a time, in order; writes go through an outbox so a slow
client never holds up the change dispatcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg
from starlette.websockets import WebSocket, WebSocketDisconnect

from . import auth, join
from .channels import TOPIC_PREFIX, Channel, Hub
from .serializers import V2, Frame, FrameError, decode_binary, decode_text, encode
from .subscriptions import Registry, Subscription, echo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """What every socket shares."""

    jwt_secret: str
    pool: asyncpg.Pool
    registry: Registry
    hub: Hub
    publication: str = "supabase_realtime"


def _system(channel: Channel, extension: str, status: str, message: str) -> dict[str, str]:
    return {"channel": channel.sub_topic, "extension": extension, "message": message, "status": status}


class Connection:
    def __init__(self, websocket: WebSocket, vsn: str, token: str, services: Services) -> None:
        self.websocket = websocket
        self.vsn = vsn
        self.token = token
        self.services = services
        self.channels: dict[str, Channel] = {}
        self._outbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()

    def send(self, frame: str | bytes) -> None:
        self._outbox.put_nowait(frame)

    async def serve(self) -> None:
        writer = asyncio.create_task(self._write(), name="realtime socket writer")
        try:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                try:
                    if message.get("bytes") is not None:
                        frame = decode_binary(message["bytes"])
                    else:
                        frame = decode_text(self.vsn, message.get("text") or "")
                except (FrameError, UnicodeDecodeError, ValueError) as exc:
                    log.info("ignored an undecodable frame: %s", exc)
                    continue
                await self.handle(frame)
        finally:
            for channel in list(self.channels.values()):
                self._drop(channel)
            self._outbox.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def close(self, code: int = 1001) -> None:
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await self.websocket.close(code)

    async def _write(self) -> None:
        while (frame := await self._outbox.get()) is not None:
            try:
                if isinstance(frame, bytes):
                    await self.websocket.send_bytes(frame)
                else:
                    await self.websocket.send_text(frame)
            except (RuntimeError, OSError, WebSocketDisconnect):
                return

    def reply(self, frame: Frame, status: str, response: dict[str, Any]) -> None:
        join_ref = frame.join_ref if self.vsn == V2 else None
        payload = {"status": status, "response": response}
        self.send(encode(self.vsn, join_ref, frame.ref, frame.topic, "phx_reply", payload))

    async def handle(self, frame: Frame) -> None:
        if frame.topic == "phoenix" and frame.event == "heartbeat":
            self.reply(frame, "ok", {})
            return
        if frame.event == "phx_join":
            await self._join(frame)
            return
        channel = self.channels.get(frame.topic)
        if channel is None:
            self.reply(frame, "error", {"reason": "unmatched topic"})
        elif frame.event == "phx_leave":
            self.reply(frame, "ok", {})
            self._drop(channel)
            channel.close()
        elif frame.event == "access_token":
            self._access_token(channel, frame.payload)
        elif frame.event == "broadcast":
            self._broadcast(channel, frame)
        elif frame.event == "presence":
            self._presence(channel, frame)
        # Realtime logs and ignores any other event.

    async def _join(self, frame: Frame) -> None:
        if not frame.topic.startswith(TOPIC_PREFIX):
            self.reply(frame, "error", {"reason": "unmatched topic"})
            return
        if frame.topic == TOPIC_PREFIX:
            self.reply(frame, "error", {"reason": "TopicNameRequired: You must provide a topic name"})
            return
        # A duplicate join (realtime-py re-sends one when a join's answer is late) replaces the earlier
        # channel, as Phoenix's ``shutdown_duplicate_channel`` does, but only once the new one is
        # subscribed, so a change committing meanwhile reaches one of them; and, as Phoenix, the old
        # channel's ``phx_close`` goes out after the new join's answer.
        previous = self.channels.get(frame.topic)
        try:
            await self._join_channel(frame)
        finally:
            if previous is not None:
                self._drop(previous)
                previous.close()

    async def _join_channel(self, frame: Frame) -> None:
        params = frame.payload if isinstance(frame.payload, dict) else {}
        config = params.get("config") if isinstance(params.get("config"), dict) else {}
        assert isinstance(config, dict)
        token = params.get("access_token") or params.get("user_token")
        if not isinstance(token, str) or token.startswith("sb_"):
            token = self.token
        try:
            claims = auth.verify(token, self.services.jwt_secret)
        except auth.AuthError as exc:
            self.reply(frame, "error", {"reason": exc.reason})
            return
        channel = Channel(self, frame.topic, frame.join_ref, config, claims, token)
        if channel.private:
            reason = f"Unauthorized: You do not have permissions to read from this Channel topic: {channel.sub_topic}"
            self.reply(frame, "error", {"reason": reason})
            return
        pg_params = config.get("postgres_changes")
        pg_params = [p for p in pg_params if p is not None] if isinstance(pg_params, list) else []
        checked = await self._check(pg_params)
        if checked.bindings:
            # Registered first and open to every change until the position is known: a transaction
            # committing after the position may reach the dispatcher while the position query is still
            # in flight, and must not be skipped. Only then older changes still queued are left out.
            # Both happen before the reply, so "Subscribed to PostgreSQL" means live: a write made
            # right after it is delivered (frames wait in the channel's backlog until the reply is out).
            channel.since_lsn = 0
            self.services.registry.add(Subscription(channel, checked.bindings))
            checked = await self._note_position(channel, checked)
        self.services.hub.add(channel)
        self.channels[frame.topic] = channel
        self._schedule_expiry(channel)
        self.reply(frame, "ok", {"postgres_changes": [echo(p) for p in pg_params]})
        if pg_params:
            if checked.error is None:
                channel.push("system", _system(channel, "postgres_changes", "ok", "Subscribed to PostgreSQL"))
            else:
                channel.push("system", _system(channel, "postgres_changes", "error", checked.error))
        if channel.presence_enabled:
            channel.push("presence_state", self.services.hub.presence_state(channel.hub_key))
        channel.open()

    async def _check(self, pg_params: list[Any]) -> join.Checked:
        if not pg_params:
            return join.Checked((), None)
        try:
            return await join.check(self.services.pool, self.services.publication, pg_params)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            log.warning("could not check postgres_changes bindings: %s", exc)
            return join.Checked((), "Realtime was unable to connect to the project database")

    async def _note_position(self, channel: Channel, checked: join.Checked) -> join.Checked:
        try:
            channel.since_lsn = await join.wal_position(self.services.pool)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            log.warning("could not read the WAL position: %s", exc)
            self.services.registry.remove(channel)
            return join.Checked((), "Realtime was unable to connect to the project database")
        return checked

    def _drop(self, channel: Channel) -> None:
        if self.channels.get(channel.topic) is channel:
            del self.channels[channel.topic]
        self.services.registry.remove(channel)
        self.services.hub.remove(channel)
        if channel.expiry is not None:
            channel.expiry.cancel()

    def _shutdown(self, channel: Channel, message: str) -> None:
        """Realtime's ``shutdown_response``: a system error, then the channel stops."""
        channel.push("system", _system(channel, "system", "error", message))
        self._drop(channel)
        channel.close()

    def _schedule_expiry(self, channel: Channel) -> None:
        if channel.expiry is not None:
            channel.expiry.cancel()
        delay = max(auth.seconds_left(channel.claims), 0.0)
        loop = asyncio.get_running_loop()
        channel.expiry = loop.call_later(delay, self._expire, channel)

    def _expire(self, channel: Channel) -> None:
        if self.channels.get(channel.topic) is channel:
            self._shutdown(channel, "Token has expired 0 seconds ago")

    def _access_token(self, channel: Channel, payload: Any) -> None:
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or token.startswith("sb_") or token == channel.access_token:
            return
        try:
            if not token:  # Realtime's confirm_token: an empty token is malformed, not a missing API key
                raise auth.AuthError("MalformedJWT", "The token provided is not a valid JWT")
            claims = auth.verify(token, self.services.jwt_secret)
        except auth.AuthError as exc:
            self._shutdown(channel, exc.message)
            return
        channel.claims = claims
        channel.access_token = token
        self._schedule_expiry(channel)
        if channel in self.services.registry:
            # Realtime re-creates the channel's Postgres subscriptions with the new claims and confirms
            # it as at join; here the claims are swapped in place, so the confirmation can go at once.
            channel.push("system", _system(channel, "postgres_changes", "ok", "Subscribed to PostgreSQL"))

    def _broadcast(self, channel: Channel, frame: Frame) -> None:
        payload = frame.payload if isinstance(frame.payload, dict) else {}
        message = {"type": "broadcast", "event": payload.get("event"), "payload": payload.get("payload")}
        self.services.hub.broadcast(channel.hub_key, message, frame.binary, sender=channel)
        if channel.broadcast_ack:
            self.reply(frame, "ok", {})

    def _presence(self, channel: Channel, frame: Frame) -> None:
        payload = frame.payload if isinstance(frame.payload, dict) else {}
        event, data = payload.get("event"), payload.get("payload")
        if event == "track":
            if not isinstance(data, dict):
                self.reply(frame, "error", {"reason": "Presence track payload must be a map"})
                return
            newly_enabled = not channel.presence_enabled
            channel.presence_enabled = True
            self.services.hub.track(channel, data)
            self.reply(frame, "ok", {})
            if newly_enabled:
                channel.push("presence_state", self.services.hub.presence_state(channel.hub_key))
        elif event == "untrack":
            self.services.hub.untrack(channel)
            self.reply(frame, "ok", {})
        else:
            self.reply(frame, "error", {})
