"""A joined channel (one topic on one socket) and the hub that fans broadcasts and presence out.

Pushes to a channel come in two kinds, as in Phoenix: channel pushes (``system``,
``presence_state``, ``phx_close``) carry the join ref on V2, fastlane pushes (``postgres_changes``,
``broadcast``, ``presence_diff``) carry none. Fastlane pushes that arrive while the join is still
being answered wait in a backlog, so the client sees them after its join reply.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any, Protocol

from .presence import Presence
from .serializers import V2, encode, encode_binary_broadcast

TOPIC_PREFIX = "realtime:"


class Outlet(Protocol):
    """The socket side a channel writes to."""

    vsn: str

    def send(self, frame: str | bytes) -> None: ...


class Channel:
    def __init__(
        self,
        outlet: Outlet,
        topic: str,
        join_ref: str | None,
        config: dict[str, Any],
        claims: dict[str, Any],
        token: str,
    ) -> None:
        self.outlet = outlet
        self.topic = topic
        self.sub_topic = topic[len(TOPIC_PREFIX) :]
        self.join_ref = join_ref
        self.claims = claims
        self.access_token = token
        broadcast = config.get("broadcast") if isinstance(config.get("broadcast"), dict) else {}
        presence = config.get("presence") if isinstance(config.get("presence"), dict) else {}
        assert isinstance(broadcast, dict) and isinstance(presence, dict)
        self.broadcast_self = bool(broadcast.get("self"))
        self.broadcast_ack = bool(broadcast.get("ack"))
        self.presence_enabled = bool(presence.get("enabled"))
        self.presence_key = str(presence.get("key") or uuid.uuid4())
        self.private = bool(config.get("private"))
        self.since_lsn = 0
        self.expiry: asyncio.TimerHandle | None = None
        self._backlog: list[str | bytes] | None = []

    @property
    def hub_key(self) -> tuple[str, bool]:
        return (self.sub_topic, self.private)

    def push(self, event: str, payload: Any) -> None:
        """A channel push: ``system``, ``presence_state``."""
        join_ref = self.join_ref if self.outlet.vsn == V2 else None
        self.outlet.send(encode(self.outlet.vsn, join_ref, None, self.topic, event, payload))

    def close(self) -> None:
        """``phx_close``, whose ``ref`` is the join ref (Phoenix's ``encode_close``)."""
        join_ref = self.join_ref if self.outlet.vsn == V2 else None
        self.outlet.send(encode(self.outlet.vsn, join_ref, self.join_ref, self.topic, "phx_close", {}))

    def deliver(self, event: str, payload: Any) -> None:
        """A fastlane push: ``postgres_changes``, ``broadcast``, ``presence_diff``."""
        self._fastlane(encode(self.outlet.vsn, None, None, self.topic, event, payload))

    def deliver_broadcast(self, payload: dict[str, Any], binary: bytes | None) -> None:
        if binary is None:
            self.deliver("broadcast", payload)
        elif self.outlet.vsn == V2:  # V1 sockets cannot represent binary payloads
            meta = payload.get("meta") if isinstance(payload.get("meta"), dict) else None
            self._fastlane(encode_binary_broadcast(self.topic, str(payload.get("event", "")), binary, meta))

    def open(self) -> None:
        """The join reply is out: send what waited and deliver directly from now on."""
        backlog, self._backlog = self._backlog or [], None
        for frame in backlog:
            self.outlet.send(frame)

    def _fastlane(self, frame: str | bytes) -> None:
        if self._backlog is not None:
            self._backlog.append(frame)
        else:
            self.outlet.send(frame)


class Hub:
    """Channels by topic (public and private topics of one name are apart, as in Realtime)."""

    def __init__(self) -> None:
        self._channels: dict[tuple[str, bool], set[Channel]] = {}
        self._presence: dict[tuple[str, bool], Presence] = {}

    def add(self, channel: Channel) -> None:
        self._channels.setdefault(channel.hub_key, set()).add(channel)

    def remove(self, channel: Channel) -> None:
        self.untrack(channel)
        members = self._channels.get(channel.hub_key)
        if members is not None:
            members.discard(channel)
            if not members:
                del self._channels[channel.hub_key]

    def members(self, key: tuple[str, bool]) -> Iterator[Channel]:
        yield from list(self._channels.get(key, ()))

    def broadcast(
        self, key: tuple[str, bool], payload: dict[str, Any], binary: bytes | None, sender: Channel | None
    ) -> None:
        for channel in self.members(key):
            if channel is not sender or channel.broadcast_self:
                channel.deliver_broadcast(payload, binary)

    def presence_state(self, key: tuple[str, bool]) -> dict[str, Any]:
        presence = self._presence.get(key)
        return presence.state() if presence else {}

    def track(self, channel: Channel, payload: dict[str, Any]) -> None:
        presence = self._presence.setdefault(channel.hub_key, Presence())
        self._diff(channel.hub_key, presence.track(id(channel), channel.presence_key, payload))

    def untrack(self, channel: Channel) -> None:
        presence = self._presence.get(channel.hub_key)
        if presence is None:
            return
        diff = presence.untrack(id(channel))
        if not presence:
            del self._presence[channel.hub_key]
        if diff is not None:
            self._diff(channel.hub_key, diff)

    def _diff(self, key: tuple[str, bool], diff: dict[str, Any]) -> None:
        for channel in self.members(key):
            if channel.presence_enabled:
                channel.deliver("presence_diff", diff)
