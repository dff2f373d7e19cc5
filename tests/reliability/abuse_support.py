"""Shared by the abuse tests: an API process per module, a canary that counts connections to this machine,
a raw HTTP/1.1 client for requests httpx refuses to send, and a snapshot of every table the API writes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from neiromatrius_devstack.process import free_port
from tests.conftest import Stack
from tests.e2e.conftest import ServiceProcess, service_env, wait_until_healthy

TABLES = ("clients", "conversations", "messages", "replies", "delivery_attempts")
TELEGRAM_TOKEN = "123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
TELEGRAM_SECRET = "abuse-telegram-secret-0123456789"


@contextlib.contextmanager
def api_process(stack: Stack, cwd: Path, **env: str) -> Iterator[str]:
    """``neiromatrius api`` on a free port with Telegram on; yields its URL, stops it (SIGTERM) afterwards."""
    port = free_port()
    overrides = {
        "API_PORT": str(port),
        "TELEGRAM_ENABLED": "true",
        "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        "REPLY_WAIT_SECONDS": "0.2",
    }
    service = ServiceProcess("api", service_env(stack, **(overrides | env)), cwd)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, service)
        yield url
    finally:
        service.stop()


async def table_counts(db: asyncpg.Connection) -> dict[str, int]:
    """Rows in every table intake writes; equal before and after means nothing was written."""
    return {table: await db.fetchval(f"select count(*) from public.{table}") for table in TABLES}


@dataclass
class Canary:
    """A TCP listener on every local address (IPv4 and IPv6 wildcards) at one port, counting connections.

    Whatever local address a URL names (127.0.0.1, 127.0.0.2, 0.0.0.0, ::1, this machine's own interface
    addresses), a connection to this port lands here and is counted; nothing is ever answered.
    """

    port: int = 0
    connections: list[str] = field(default_factory=list)
    _servers: list[asyncio.Server] = field(default_factory=list)

    async def start(self) -> None:
        for _ in range(20):
            try:
                v4 = await asyncio.start_server(self._accept, "0.0.0.0", 0)
                self.port = v4.sockets[0].getsockname()[1]
                self._servers.append(v4)
                if socket.has_ipv6:
                    self._servers.append(await asyncio.start_server(self._accept, "::", self.port))
                return
            except OSError:  # the IPv6 side of that port was taken: try another
                await self.close()
        raise RuntimeError("no port free on both IPv4 and IPv6")

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(str(writer.get_extra_info("sockname")))
        writer.close()

    async def close(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()
        self._servers.clear()


def local_addresses() -> list[str]:
    """This machine's own non-loopback addresses (the source address of a route), if it has any."""
    found = []
    for family, probe in ((socket.AF_INET, "192.0.2.123"), (socket.AF_INET6, "2001:db8::123")):
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((probe, 9))  # UDP connect sends nothing; it only picks a route
            found.append(sock.getsockname()[0])
    return found


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_request(url: str, data: bytes, *, chunks: list[bytes] | None = None, bound: float = 10.0) -> RawResponse:
    """Send ``data`` (and then ``chunks``) as is on one connection and read the answer until the server closes.

    A server may answer and close before taking everything (an oversized body): send errors are ignored.
    The socket is used directly, not through asyncio's streams: there a failed write (EPIPE once the server
    has closed) closes the transport and the reader raises at once, losing an answer already received but
    not yet read. The kernel keeps it readable until it has been read, even after a reset.
    """
    host, port = url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(bound):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (host, int(port)))

            async def send() -> None:
                with contextlib.suppress(ConnectionError):
                    for part in (data, *(chunks or [])):
                        await loop.sock_sendall(sock, part)

            sending = asyncio.create_task(send())
            raw = b""
            # Every request here says Connection: close, so EOF ends the answer. A server that answers before
            # reading all of an oversized body resets the connection after its answer: keep what arrived.
            with contextlib.suppress(ConnectionResetError):
                while chunk := await loop.sock_recv(sock, 65536):
                    raw += chunk
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
        finally:
            sock.close()
    return _parse(raw)


def _parse(raw: bytes) -> RawResponse:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(status_line.split(" ")[1]), headers, body)
