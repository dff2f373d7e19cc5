"""A tiny HTTP/1.1 server on 127.0.0.1 for webhook tests: it counts accepted TCP connections, records
each request, answers from a script, and lets a test wait (with a bound) for the requests it expects.
By default each connection carries one request; ``keep_alive`` serves requests on it until the client
closes it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    hang: bool = False  # read the request, then never answer
    body: bytes = b"ok"
    hold_body: bool = False  # send the status and headers, then never the body


@dataclass(frozen=True)
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass(kw_only=True)
class LoopbackServer:
    """HTTP/1.1 on 127.0.0.1, answered by ``respond``; a hanging answer is held until ``close``. The base
    of the webhook receiver and of the scripted OpenAI."""

    keep_alive: bool = False
    tls: ssl.SSLContext | None = None  # serve https with this context
    connections: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def respond(self, request: Received) -> Reply:
        raise NotImplementedError

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                reply = await self.respond(await _read_request(reader))
                if reply.hang:
                    await self._released.wait()
                    return
                extra = "".join(f"{name}: {value}\r\n" for name, value in reply.headers)
                status = f"HTTP/1.1 {reply.status} Whatever\r\n"
                connection = "" if self.keep_alive else "Connection: close\r\n"
                body = b"" if reply.status in (204, 304) else reply.body  # answers that carry no body
                head = f"{status}Content-Length: {len(body)}\r\n{connection}{extra}\r\n"
                writer.write(head.encode() + (b"" if reply.hold_body else body))
                await writer.drain()
                if reply.hold_body:
                    await self._released.wait()
                    return
                if not self.keep_alive:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> Received:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    request_line, *lines = head.split("\r\n")
    headers = {}
    for line in filter(None, lines):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    method, target, _ = request_line.split(" ", 2)
    return Received(method, target, headers, body)


@dataclass
class Receiver(LoopbackServer):
    replies: list[Reply]
    requests: list[Received] = field(default_factory=list)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_for_requests(self, count: int, bound: float = 15.0) -> list[Received]:
        """Return once ``count`` requests have arrived (TimeoutError after ``bound`` seconds)."""
        async with asyncio.timeout(bound), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return list(self.requests)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls is not None else 'http'}://{host}:{self.port}{path}"

    async def respond(self, request: Received) -> Reply:
        self.requests.append(request)
        async with self._arrived:
            self._arrived.notify_all()
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
