"""Operator roles over Realtime (realtime-py inside supabase-py): a channel joined with a user's token
receives only the pipeline rows RLS lets that user read, at the moment of each change.

A negative assertion always rides on a positive control written *after* the change that must not arrive
(an ``rt_items`` row, readable by everyone, on the same channel): changes reach a channel in commit order,
so once the control is in, the other change would have been too.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from realtime import AsyncRealtimeChannel, RealtimeSubscribeStates
from supabase import AsyncClient, acreate_client

from neiromatrius.adapters.supabase_store import SupabaseMessageStore
from neiromatrius.core.models import IncomingMessage
from tests.conftest import Stack
from tests.support.operators import Operators

WAIT = 10.0
LIFETIME = 4  # seconds, for the tokens that are meant to expire during a test
Event = tuple[str, dict[str, Any]]  # (table, the change's data)


class Watch:
    """One supabase-py client with one channel on the client's messages and on the control table."""

    def __init__(self, client: AsyncClient, client_id: str, label: str) -> None:
        self.client = client
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.states: asyncio.Queue[tuple[str, str | None]] = asyncio.Queue()
        self.channel: AsyncRealtimeChannel = client.channel(f"ops-{uuid.uuid4().hex[:12]}")
        for table, column, value in (("messages", "client_id", client_id), ("rt_items", "label", label)):
            self.channel.on_postgres_changes("INSERT", self._collect(table), table, filter=f"{column}=eq.{value}")

    def _collect(self, table: str) -> Callable[[Any], None]:
        return lambda payload: self.events.put_nowait((table, payload["data"]))

    async def subscribe(self) -> None:
        ready = asyncio.Event()
        self.channel.on_system(lambda p: ready.set() if p.message == "Subscribed to PostgreSQL" else None)
        await self.channel.subscribe(
            lambda state, error: self.states.put_nowait((state.value, str(error) if error else None))
        )
        assert await self.next_state() == (RealtimeSubscribeStates.SUBSCRIBED.value, None)
        await asyncio.wait_for(ready.wait(), WAIT)

    async def next_event(self) -> Event:
        return await asyncio.wait_for(self.events.get(), WAIT)

    async def next_state(self) -> tuple[str, str | None]:
        return await asyncio.wait_for(self.states.get(), WAIT)


@pytest.fixture
def label() -> str:
    return f"ops-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def watch(stack: Stack, client_id: str, label: str) -> AsyncIterator[Callable[[str], Any]]:
    clients: list[AsyncClient] = []

    async def make(token: str) -> Watch:
        client = await acreate_client(stack.url, stack.anon_key)
        clients.append(client)
        await client.realtime.set_auth(token)
        watcher = Watch(client, client_id, label)
        await watcher.subscribe()
        return watcher

    yield make
    for client in clients:
        await client.remove_all_channels()


async def control(db: asyncpg.Connection, label: str) -> int:
    row: int = await db.fetchval("insert into public.rt_items (label) values ($1) returning id", label)
    return row


async def test_agents_and_admins_receive_messages_a_signed_in_stranger_does_not(
    stack: Stack,
    operators: Operators,
    watch: Callable[[str], Any],
    store: SupabaseMessageStore,
    incoming: Callable[..., IncomingMessage],
    db: asyncpg.Connection,
    label: str,
) -> None:
    agent, admin = await operators.make("agent"), await operators.make("admin")
    stranger = await operators.user()
    watchers = {name: await watch(stack.user_token(sub=user)) for name, user in
                (("agent", agent.user_id), ("admin", admin.user_id), ("stranger", stranger))}  # fmt: skip

    message_id = (await store.intake(incoming())).id
    control_id = await control(db, label)

    for name in ("agent", "admin"):
        table, data = await watchers[name].next_event()
        assert (table, data["record"]["id"], data["record"]["content"]) == ("messages", message_id, incoming().content)
        assert (await watchers[name].next_event())[0] == "rt_items"
    table, data = await watchers["stranger"].next_event()
    assert (table, data["record"]["id"]) == ("rt_items", control_id)


async def test_a_deactivated_operators_open_channel_stops_receiving_and_resumes_when_reactivated(
    stack: Stack,
    operators: Operators,
    watch: Callable[[str], Any],
    store: SupabaseMessageStore,
    incoming: Callable[..., IncomingMessage],
    db: asyncpg.Connection,
    label: str,
) -> None:
    agent = await operators.make("agent")
    watcher = await watch(stack.user_token(sub=agent.user_id))

    first = (await store.intake(incoming("first"))).id
    assert (await watcher.next_event())[1]["record"]["id"] == first

    await operators.set_active(agent.user_id, False)
    await store.intake(incoming("while deactivated"))
    control_id = await control(db, label)
    table, data = await watcher.next_event()
    assert (table, data["record"]["id"]) == ("rt_items", control_id)

    await operators.set_active(agent.user_id, True)
    third = (await store.intake(incoming("back"))).id
    assert (await watcher.next_event())[1]["record"]["id"] == third
    assert watcher.states.empty()  # the channel itself stayed up throughout


async def test_a_refreshed_token_keeps_the_channel_an_expiring_one_ends_it_with_realtimes_message(
    stack: Stack,
    operators: Operators,
    watch: Callable[[str], Any],
    store: SupabaseMessageStore,
    incoming: Callable[..., IncomingMessage],
) -> None:
    agent = await operators.make("agent")
    # Whole seconds: a lifetime of N leaves N-1 to N seconds, enough to join and refresh on a busy machine.
    refreshed = await watch(stack.user_token(sub=agent.user_id, lifetime=LIFETIME))
    reconfirmed = asyncio.Event()
    refreshed.channel.on_system(lambda p: reconfirmed.set() if p.message == "Subscribed to PostgreSQL" else None)
    await refreshed.client.realtime.set_auth(stack.user_token(sub=agent.user_id, lifetime=3600))
    await asyncio.wait_for(reconfirmed.wait(), WAIT)  # Realtime confirms the subscription under the new claims
    # Minted after the first one, so it expires no earlier: once this channel is ended, the first
    # token's expiry has passed too.
    expiring = await watch(stack.user_token(sub=agent.user_id, lifetime=LIFETIME))

    state, error = await expiring.next_state()
    assert state == RealtimeSubscribeStates.CHANNEL_ERROR.value and error is not None
    payload = json.loads(error)
    assert (payload["extension"], payload["status"]) == ("system", "error")
    assert payload["message"].startswith("Token has expired")
    assert (await expiring.next_state())[0] == RealtimeSubscribeStates.CLOSED.value

    assert refreshed.states.empty(), refreshed.states  # no error, no close: the refresh came in time
    message_id = (await store.intake(incoming())).id
    assert (await refreshed.next_event())[1]["record"]["id"] == message_id
    assert refreshed.states.empty()
    assert expiring.events.empty()


async def test_an_expired_token_sent_to_an_open_channel_ends_it(
    stack: Stack, operators: Operators, watch: Callable[[str], Any]
) -> None:
    agent = await operators.make("agent")
    watcher = await watch(stack.user_token(sub=agent.user_id))
    await watcher.client.realtime.set_auth(stack.user_token(sub=agent.user_id, lifetime=-30))
    state, error = await watcher.next_state()
    assert state == RealtimeSubscribeStates.CHANNEL_ERROR.value and error is not None
    assert json.loads(error)["message"].startswith("Token has expired 3")  # 30 or a little more seconds ago
    assert (await watcher.next_state())[0] == RealtimeSubscribeStates.CLOSED.value
