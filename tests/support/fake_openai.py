"""A scripted OpenAI on 127.0.0.1, for listeners that run as processes (respx cannot reach into them).

It answers ``POST /v1/chat/completions`` from a script that sees the customer's message (the last one
in the request) and how many times that message has been asked about, and records every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support import openai_mock


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = openai_mock.answered().content
    hang: bool = False  # read the request, then never answer (until the server closes)


def failure(status: int, code: str, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    """An OpenAI error body with ``status`` (``code`` as its type and code)."""
    return Answer(status, headers, openai_mock.error(status, code).content)


@dataclass(frozen=True)
class Call:
    content: str  # the customer's message this call is about
    at: float  # time.monotonic() when the request arrived


Script = Callable[[str, int], Answer]  # (message content, 1-based call number for it) -> the answer


def always_answer(content: str, nth: int) -> Answer:
    return Answer()


@dataclass
class FakeOpenAI:
    script: Script = always_answer
    calls: list[Call] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def calls_for(self, content: str) -> list[Call]:
        return [call for call in self.calls if call.content == content]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._answer(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        length = next(
            (int(line.split(":", 1)[1]) for line in head.split("\r\n") if line.lower().startswith("content-length:")),
            0,
        )
        request = json.loads(await reader.readexactly(length))
        content = str(request["messages"][-1]["content"])
        self.calls.append(Call(content, time.monotonic()))
        answer = self.script(content, len(self.calls_for(content)))
        if answer.hang:
            await self._released.wait()
            return
        extra = "".join(f"{name}: {value}\r\n" for name, value in answer.headers)
        writer.write(
            f"HTTP/1.1 {answer.status} Whatever\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(answer.body)}\r\nConnection: close\r\n{extra}\r\n".encode()
            + answer.body
        )
        await writer.drain()
