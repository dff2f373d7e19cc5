"""A scripted OpenAI on 127.0.0.1, for listeners that run as processes (respx cannot reach into them).

It answers ``POST /v1/chat/completions`` from a script that sees the customer's message (the last one
in the request) and how many times that message has been asked about, and records every call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support import openai_mock
from tests.support.http_receiver import LoopbackServer, Received, Reply

JSON = (("Content-Type", "application/json"),)


def answer(
    status: int = 200, headers: tuple[tuple[str, str], ...] = (), body: bytes | None = None, hang: bool = False
) -> Reply:
    """A reply of the fake: a completion by default; ``hang`` reads the request and never answers."""
    return Reply(status, JSON + headers, hang, openai_mock.answered().content if body is None else body)


def failure(status: int, code: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    """An OpenAI error body with ``status`` (``code`` as its type and code)."""
    return answer(status, headers, openai_mock.error(status, code).content)


@dataclass(frozen=True)
class Call:
    content: str  # the customer's message this call is about
    at: float  # time.monotonic() when the request arrived


Script = Callable[[str, int], Reply]  # (message content, 1-based call number for it) -> the answer


def always_answer(content: str, nth: int) -> Reply:
    return answer()


@dataclass
class FakeOpenAI(LoopbackServer):
    script: Script = always_answer
    calls: list[Call] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def calls_for(self, content: str) -> list[Call]:
        return [call for call in self.calls if call.content == content]

    async def respond(self, request: Received) -> Reply:
        content = str(json.loads(request.body)["messages"][-1]["content"])
        self.calls.append(Call(content, time.monotonic()))
        return self.script(content, len(self.calls_for(content)))
