"""Loopback stand-ins the pipeline benchmark points the services at: a fake OpenAI that answers a canned
structured completion after a fixed delay (and counts calls in flight), and a webhook sink that
records when each reply arrives."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

MODEL_DELAY = 0.2
ANSWER = {
    "category": "greeting",
    "intent": "bench_message",
    "sentiment": "positive",
    "urgency": "low",
    "language": "en",
    "confidence": 0.93,
    "needs_human": False,
    "reply": "Hello! Thanks for your message. How can we help?",
}
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1764115200,
        "model": "gpt-4o-mini-bench",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": json.dumps(ANSWER), "refusal": None},
            }
        ],
        "usage": {"prompt_tokens": 321, "completion_tokens": 54, "total_tokens": 375},
    }
).encode()


class _Server:
    def __init__(self) -> None:
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self, app: web.Application) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class FakeModel(_Server):
    """``POST /v1/chat/completions``: sleeps ``delay``, answers ``COMPLETION``; counts calls in flight."""

    def __init__(self, delay: float = MODEL_DELAY) -> None:
        super().__init__()
        self.delay = delay
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        self.calls = 0
        self.max_in_flight = self.in_flight

    async def start(self, app: web.Application | None = None) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        await super().start(app)

    async def _complete(self, request: web.Request) -> web.Response:
        await request.read()
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        return web.Response(body=COMPLETION, content_type="application/json")


class WebhookSink(_Server):
    """``POST /hook``: records the monotonic arrival time of each reply, keyed by its chat id."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[str, float] = {}
        self.times: list[float] = []  # every first arrival, in order: throughput over any window
        self.duplicates = 0
        self._waiting: dict[str, asyncio.Future[float]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def expect(self, chat: str) -> asyncio.Future[float]:
        """A future set to the arrival time of ``chat``'s reply."""
        future = asyncio.get_running_loop().create_future()
        self._waiting[chat] = future
        return future

    async def start(self, app: web.Application | None = None) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._receive)
        await super().start(app)

    async def _receive(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        try:
            event: dict[str, Any] = json.loads(await request.read())
        except ConnectionResetError:  # a listener stopped mid-delivery; it retries after a restart
            return web.Response(status=499)
        chat = str(event["data"]["chat_id"])
        if chat in self.arrived:
            self.duplicates += 1
        else:
            self.arrived[chat] = now
            self.times.append(now)
            future = self._waiting.pop(chat, None)
            if future is not None and not future.done():
                future.set_result(now)
        return web.Response(text="ok")
