"""Operator roles through supabase-js (Node, Realtime protocol 2.0.0), as the console will read: the user's
token on REST and Realtime, RLS per change, a refreshed token keeping the channel.

Negative assertions ride on a control row (``rt_items``, readable by everyone) written after the change
that must not arrive: a channel receives changes in commit order.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from neiromatrius.adapters.supabase_store import SupabaseMessageStore
from neiromatrius.core.models import IncomingMessage
from tests.conftest import Stack
from tests.integration.devstack.test_realtime_js import node_project  # noqa: F401  (the fixture)
from tests.support.operators import Operators

WAIT = 30.0
LIFETIME = 4  # seconds (whole: N leaves N-1 to N), for tokens meant to expire during a test


class Console:
    """``operator.mjs`` running with one user's token: its JSON lines in, commands out."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), WAIT)
        assert raw, "the script ended"
        result: dict[str, Any] = json.loads(raw)
        return result

    async def until(self, key: str) -> dict[str, Any]:
        """The next line with ``key``; the status and system lines before it are returned by ``skipped``."""
        self.skipped: list[dict[str, Any]] = []
        while key not in (line := await self.line()):
            self.skipped.append(line)
        return line

    async def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()


@pytest.fixture
def label() -> str:
    return f"js-ops-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def console(
    stack: Stack,
    node_project: Path,  # noqa: F811  (the fixture imported above)
    client_id: str,
    label: str,
) -> AsyncIterator[Callable[[str], Any]]:
    started: list[asyncio.subprocess.Process] = []

    async def start(token: str) -> Console:
        env = {**os.environ, "SUPABASE_URL": stack.url, "SUPABASE_ANON_KEY": stack.anon_key, "USER_TOKEN": token,
               "CLIENT_ID": client_id, "RT_LABEL": label}  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            "node", "operator.mjs", cwd=node_project, env=env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        started.append(process)
        return Console(process)

    yield start
    for process in started:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def control(db: asyncpg.Connection, label: str) -> int:
    row: int = await db.fetchval("insert into public.rt_items (label) values ($1) returning id", label)
    return row


async def test_supabase_js_as_agent_and_as_a_stranger_and_after_deactivation(
    stack: Stack,
    operators: Operators,
    console: Callable[[str], Any],
    store: SupabaseMessageStore,
    incoming: Callable[..., IncomingMessage],
    db: asyncpg.Connection,
    label: str,
) -> None:
    earlier = (await store.intake(incoming("before anyone watched"))).id
    agent = await operators.make("agent")
    stranger = await operators.user()
    as_agent = await console(stack.user_token(sub=agent.user_id))
    as_stranger = await console(stack.user_token(sub=stranger))
    assert (await as_agent.line(), await as_stranger.line()) == ({"rest": 1}, {"rest": 0})
    for watcher in (as_agent, as_stranger):
        await watcher.until("ready")
        assert {"status": "SUBSCRIBED"} in watcher.skipped

    message = (await store.intake(incoming("while watched"))).id
    first_control = await control(db, label)
    assert await as_agent.until("table") == {"table": "messages", "id": message}
    assert await as_agent.until("table") == {"table": "rt_items", "id": first_control}
    assert await as_stranger.until("table") == {"table": "rt_items", "id": first_control}
    assert message != earlier

    await operators.set_active(agent.user_id, False)
    await store.intake(incoming("while deactivated"))
    second_control = await control(db, label)
    assert await as_agent.until("table") == {"table": "rt_items", "id": second_control}


async def test_supabase_js_set_auth_with_a_refreshed_token_keeps_the_channel_an_expiring_one_ends(
    stack: Stack,
    operators: Operators,
    console: Callable[[str], Any],
    store: SupabaseMessageStore,
    incoming: Callable[..., IncomingMessage],
) -> None:
    agent = await operators.make("agent")
    refreshed = await console(stack.user_token(sub=agent.user_id, lifetime=LIFETIME))
    await refreshed.until("ready")
    await refreshed.send(f"auth {stack.user_token(sub=agent.user_id, lifetime=3600)}")
    await refreshed.until("auth")
    await refreshed.until("ready")  # Realtime confirms the subscription again under the new claims
    # Minted after the first token, so it expires no earlier: once this channel ends, the first
    # token's expiry has passed too.
    expiring = await console(stack.user_token(sub=agent.user_id, lifetime=LIFETIME))
    await expiring.until("ready")

    ended = await expiring.until("system")
    assert ended["system"]["extension"] == "system" and ended["system"]["status"] == "error"
    assert ended["system"]["message"].startswith("Token has expired")
    assert (await expiring.until("status"))["status"] in ("CLOSED", "CHANNEL_ERROR")

    message = (await store.intake(incoming())).id
    assert await refreshed.until("table") == {"table": "messages", "id": message}
    assert not any("system" in line for line in refreshed.skipped), refreshed.skipped
