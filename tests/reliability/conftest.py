"""Reliability: the service against hostile input, failing neighbours, crashes and volume, end to end.

The e2e tier's fixtures are reused here: the API as a real process, listeners as processes (or in this
process where respx mocks OpenAI), loopback webhook receivers, a scripted OpenAI
(``tests.support.fake_openai``), and clients cleaned up after each test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import api, clean_clients, e2e_settings, start_service  # noqa: F401 (fixtures, as in e2e)
from tests.integration.pipeline.conftest import worker_queue_clear  # noqa: F401 (fixture)
from tests.support.fake_openai import FakeOpenAI, Script, always_answer

REPO_ROOT = Path(__file__).resolve().parents[2]

MakeOpenAI = Callable[..., Awaitable[FakeOpenAI]]


@pytest.fixture
async def fake_openai() -> AsyncIterator[MakeOpenAI]:
    """Scripted OpenAIs on 127.0.0.1; closed (hanging calls released) after the test."""
    started: list[FakeOpenAI] = []

    async def make(script: Script = always_answer) -> FakeOpenAI:
        server = FakeOpenAI(script)
        await server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        await server.close()


@pytest.fixture
def client_id(clean_clients: list[str]) -> str:  # noqa: F811
    """A client of this test only; everything it wrote is deleted afterwards."""
    value = f"rel-{uuid.uuid4().hex[:10]}"
    clean_clients.append(value)
    return value
