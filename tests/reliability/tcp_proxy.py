"""A TCP proxy on 127.0.0.1 for outage tests: it can cut every connection, refuse new ones, and, on the
Realtime websocket, drop the ``postgres_changes`` frames towards the client while passing the rest.

A connection is a websocket when its first request asks for ``/realtime/v1/websocket``; the proxy
strips ``Sec-WebSocket-Extensions`` from that request so frames cross uncompressed and can be read
(and one dropped without corrupting a compression context). Every other connection is copied as is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

HEAD_END = b"\r\n\r\n"
WEBSOCKET_PATH = b"/realtime/v1/websocket"
SUBSCRIBED = "Subscribed to PostgreSQL"
TEXT = 0x1


@dataclass
class Counts:
    websocket_connections: int = 0
    http_connections: int = 0
    refused_websocket: int = 0
    refused_http: int = 0
    events_forwarded: int = 0  # postgres_changes frames that reached the client
    events_dropped: int = 0  # postgres_changes frames the server sent and the proxy swallowed
    subscriptions: int = 0  # "Subscribed to PostgreSQL" confirmations that reached the client


@dataclass
class TcpProxy:
    upstream_port: int
    port: int = 0
    refusing: bool = False
    drop_changes: bool = False
    counts: Counts = field(default_factory=Counts)
    _server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def cut(self) -> None:
        """Reset every open connection, both sides, at once."""
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._open.add(client_writer)
        try:
            await self._relay(client_reader, client_writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a cut, or a peer that went away: the connection is over either way
        finally:
            client_writer.transport.abort()
            self._open.discard(client_writer)
            self._handlers.discard(task)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        head = await client_reader.readuntil(HEAD_END)
        websocket = WEBSOCKET_PATH in head.split(b"\r\n", 1)[0]
        if self.refusing:
            if websocket:
                self.counts.refused_websocket += 1
            else:
                self.counts.refused_http += 1
            return
        if websocket:
            self.counts.websocket_connections += 1
            head = _without_extensions(head)
        else:
            self.counts.http_connections += 1
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._open.add(server_writer)
        try:
            server_writer.write(head)
            back = self._frames if websocket else _copy
            await asyncio.gather(_copy(client_reader, server_writer), back(server_reader, client_writer))
        finally:
            server_writer.transport.abort()
            self._open.discard(server_writer)

    async def _frames(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Server → client on a websocket: the upgrade answer, then frame by frame."""
        writer.write(await reader.readuntil(HEAD_END))
        with contextlib.suppress(asyncio.IncompleteReadError):
            while True:
                frame, opcode, payload = await _read_frame(reader)
                message = _json(payload) if opcode == TEXT else None
                event = message.get("event") if isinstance(message, dict) else None
                if event == "postgres_changes":
                    if self.drop_changes:
                        self.counts.events_dropped += 1
                        continue
                    self.counts.events_forwarded += 1
                elif event == "system" and isinstance(message, dict) and _is_subscribed(message):
                    self.counts.subscriptions += 1
                writer.write(frame)
                await writer.drain()
        _half_close(writer)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while chunk := await reader.read(65536):
        writer.write(chunk)
        await writer.drain()
    _half_close(writer)


def _half_close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        if writer.can_write_eof() and not writer.transport.is_closing():
            writer.write_eof()


async def _read_frame(reader: asyncio.StreamReader) -> tuple[bytes, int, bytes]:
    """One RFC 6455 frame: (its raw bytes, its opcode, its payload, unmasked)."""
    head = await reader.readexactly(2)
    length = head[1] & 0x7F
    extended = b""
    if length == 126:
        extended = await reader.readexactly(2)
    elif length == 127:
        extended = await reader.readexactly(8)
    if extended:
        length = int.from_bytes(extended, "big")
    mask = await reader.readexactly(4) if head[1] & 0x80 else b""
    payload = await reader.readexactly(length)
    plain = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if mask else payload
    return head + extended + mask + payload, head[0] & 0x0F, plain


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return None


def _is_subscribed(message: dict[str, Any]) -> bool:
    payload = message.get("payload")
    return isinstance(payload, dict) and payload.get("message") == SUBSCRIBED


def _without_extensions(head: bytes) -> bytes:
    lines = head[: -len(HEAD_END)].split(b"\r\n")
    kept = [line for line in lines if not line.lower().startswith(b"sec-websocket-extensions:")]
    return b"\r\n".join(kept) + HEAD_END
