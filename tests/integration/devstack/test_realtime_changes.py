"""postgres_changes through the real realtime-py (inside supabase-py), against the stack or a real Supabase.

Each test subscribes, waits for Realtime's "Subscribed to PostgreSQL" (only then does real Realtime
guarantee delivery), writes, and waits for events with a bound. A negative assertion always rides on
a positive control written *after* the change that must not arrive: changes are delivered in commit
order, so once the control is in, the other one would have been too.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from realtime import AsyncRealtimeChannel, RealtimeSubscribeStates
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from neiromatrius_devstack.realtime.rls import wait_until_visible
from tests.conftest import Stack

WAIT = 10.0
Event = dict[str, Any]


class Subscriber:
    """A supabase-py client whose channel callbacks only feed queues (realtime-py calls them synchronously)."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.states: asyncio.Queue[tuple[str, str | None]] = asyncio.Queue()

    def channel(self, **params: Any) -> AsyncRealtimeChannel:
        return self.client.channel(f"rt-{uuid.uuid4().hex[:12]}", params or None)

    async def subscribe(self, channel: AsyncRealtimeChannel) -> None:
        """Join and wait until Realtime confirms the Postgres subscription."""
        ready = asyncio.Event()
        channel.on_system(lambda payload: ready.set() if payload.message == "Subscribed to PostgreSQL" else None)
        await channel.subscribe(
            lambda state, error: self.states.put_nowait((state.value, str(error) if error else None))
        )
        assert await self.next_state() == (RealtimeSubscribeStates.SUBSCRIBED.value, None)
        await asyncio.wait_for(ready.wait(), WAIT)

    async def next_state(self) -> tuple[str, str | None]:
        return await asyncio.wait_for(self.states.get(), WAIT)


@pytest.fixture
async def connect(stack: Stack) -> AsyncIterator[Callable[..., Any]]:
    clients: list[AsyncClient] = []

    async def make(token: str | None = None) -> Subscriber:
        client = await acreate_client(stack.url, stack.anon_key)
        clients.append(client)
        if token is not None:
            await client.realtime.set_auth(token)
        return Subscriber(client)

    yield make
    for client in clients:
        await client.remove_all_channels()


def collect(queue: asyncio.Queue[Event]) -> Callable[[Any], None]:
    return lambda payload: queue.put_nowait(payload["data"])


async def next_event(queue: asyncio.Queue[Event]) -> Event:
    return await asyncio.wait_for(queue.get(), WAIT)


def tag() -> str:
    return f"rt-{uuid.uuid4().hex[:10]}"


async def test_filtered_insert_from_rest_and_from_a_direct_connection(
    stack: Stack, connect: Callable[..., Any], db: asyncpg.Connection
) -> None:
    label = tag()
    subscriber = await connect()
    events: asyncio.Queue[Event] = asyncio.Queue()
    raw: list[dict[str, Any]] = []
    channel = subscriber.channel()
    channel.on_postgres_changes("INSERT", lambda p: (raw.append(p), events.put_nowait(p["data"])), "rt_items",
                                filter=f"label=eq.{label}")  # fmt: skip
    await subscriber.subscribe(channel)

    await db.execute("insert into rt_items (label, qty) values ($1, 0)", f"{label}-other")  # filtered out
    async with httpx.AsyncClient(timeout=WAIT) as http:
        service = await acreate_client(stack.url, stack.service_key, AsyncClientOptions(httpx_client=http))
        inserted = await service.table("rt_items").insert({"label": label, "qty": 1, "price": "2.50"}).execute()
    await db.execute(
        "insert into rt_items (label, qty, meta, tags) values ($1, 2, $2, $3)", label, '{"a": [1, 2]}', ["x", "y z"]
    )

    from_rest, direct = await next_event(events), await next_event(events)
    assert from_rest["record"]["id"] == inserted.data[0]["id"]
    assert (from_rest["record"]["qty"], direct["record"]["qty"]) == (1, 2)  # commit order; the other label never came
    assert from_rest["type"] == "INSERT" and from_rest["schema"] == "public" and from_rest["table"] == "rt_items"
    assert from_rest["errors"] is None and "old_record" not in from_rest
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", from_rest["commit_timestamp"])
    assert {"name": "qty", "type": "int4"} in from_rest["columns"]
    assert {"name": "tags", "type": "_text"} in from_rest["columns"]
    assert from_rest["record"]["price"] == 2.5
    assert direct["record"]["meta"] == {"a": [1, 2]} and direct["record"]["tags"] == ["x", "y z"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00", direct["record"]["created_at"])
    assert raw[0]["ids"] == [channel.postgres_changes_callbacks[0].id]


async def test_update_and_delete_carry_old_records_as_the_replica_identity_allows(
    connect: Callable[..., Any], db: asyncpg.Connection
) -> None:
    label = tag()
    subscriber = await connect()
    default_events: asyncio.Queue[Event] = asyncio.Queue()
    full_events: asyncio.Queue[Event] = asyncio.Queue()
    channel = subscriber.channel()
    channel.on_postgres_changes("*", collect(default_events), "rt_items", filter=f"label=eq.{label}")
    channel.on_postgres_changes("*", collect(full_events), "rt_full", filter=f"label=eq.{label}")
    await subscriber.subscribe(channel)

    item = await db.fetchval("insert into rt_items (label, qty) values ($1, 1) returning id", label)
    full = await db.fetchval("insert into rt_full (label, qty) values ($1, 1) returning id", label)
    await db.execute("update rt_items set qty = 2 where id = $1", item)
    await db.execute("update rt_full set qty = 2 where id = $1", full)
    await db.execute("delete from rt_items where id = $1", item)
    await db.execute("delete from rt_full where id = $1", full)

    assert (await next_event(default_events))["type"] == "INSERT"
    updated = await next_event(default_events)
    assert updated["type"] == "UPDATE" and updated["record"]["qty"] == 2
    assert updated["old_record"] == {"id": item}  # REPLICA IDENTITY DEFAULT: the key only
    # A DELETE under DEFAULT identity has no label in its old record, so the label filter cannot match it;
    # the FULL table's DELETE below proves it was delivered in order.
    assert (await next_event(full_events))["type"] == "INSERT"
    full_update = await next_event(full_events)
    assert full_update["old_record"] == {"id": full, "label": label, "qty": 1}
    full_delete = await next_event(full_events)
    assert full_delete["type"] == "DELETE" and "record" not in full_delete
    assert full_delete["old_record"] == {"id": full, "label": label, "qty": 2}
    assert default_events.empty()


async def test_delete_under_default_identity_has_the_key_as_old_record(
    connect: Callable[..., Any], db: asyncpg.Connection
) -> None:
    subscriber = await connect()
    events: asyncio.Queue[Event] = asyncio.Queue()
    item = await db.fetchval("insert into rt_items (label) values ($1) returning id", tag())
    channel = subscriber.channel()
    channel.on_postgres_changes("DELETE", collect(events), "rt_items", filter=f"id=eq.{item}")
    await subscriber.subscribe(channel)
    await db.execute("delete from rt_items where id = $1", item)
    deleted = await next_event(events)
    assert deleted["type"] == "DELETE" and deleted["old_record"] == {"id": item} and "record" not in deleted


async def test_filter_operators(connect: Callable[..., Any], db: asyncpg.Connection) -> None:
    label = tag()
    subscriber = await connect()
    seen: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    channel = subscriber.channel()
    for name, spec in {
        "in": "qty=in.(7001,7003)",
        "gte": "qty=gte.7003",
        "lt": "qty=lt.7002",
        "neq": f"label=neq.{label}",
        "gt": "qty=gt.7001",
        "lte": "qty=lte.7001",
    }.items():
        channel.on_postgres_changes(
            "INSERT", lambda p, name=name: seen.put_nowait((name, p["data"]["record"]["qty"])), "rt_items", filter=spec
        )
    await subscriber.subscribe(channel)
    for qty in (7001, 7002, 7003):
        await db.execute("insert into rt_items (label, qty) values ($1, $2)", label, qty)
    # A row the "neq" binding does see, last, so every earlier delivery is in.
    await db.execute("insert into rt_items (label, qty) values ($1, 0)", f"{label}-end")
    got: set[tuple[str, int]] = set()
    while ("neq", 0) not in got:
        got.add(await asyncio.wait_for(seen.get(), WAIT))
    while not seen.empty():  # the rest of the last event's callbacks
        got.add(seen.get_nowait())
    assert got == {
        ("in", 7001), ("in", 7003), ("gte", 7003), ("lt", 7001), ("lt", 0), ("gt", 7002), ("gt", 7003),
        ("lte", 7001), ("lte", 0), ("neq", 0),
    }  # fmt: skip


async def test_a_table_outside_the_publication_is_refused(connect: Callable[..., Any]) -> None:
    subscriber = await connect()
    channel = subscriber.channel()
    channel.on_postgres_changes("*", lambda p: None, "rt_unpublished")
    await channel.subscribe(lambda state, error: subscriber.states.put_nowait((state.value, str(error))))
    assert (await subscriber.next_state())[0] == RealtimeSubscribeStates.SUBSCRIBED.value
    state, error = await subscriber.next_state()
    assert state == RealtimeSubscribeStates.CHANNEL_ERROR.value
    assert error is not None and "Unable to subscribe to changes with given parameters" in error
    assert "table: rt_unpublished" in error


async def test_rls_user_b_never_receives_user_a_rows(
    stack: Stack, connect: Callable[..., Any], db: asyncpg.Connection
) -> None:
    user_a, user_b = str(uuid.uuid4()), str(uuid.uuid4())
    queues: dict[str, asyncio.Queue[Event]] = {user_a: asyncio.Queue(), user_b: asyncio.Queue()}
    for user in (user_a, user_b):
        subscriber = await connect(stack.user_token(user))
        channel = subscriber.channel()
        channel.on_postgres_changes("INSERT", collect(queues[user]), "rt_owned")
        await subscriber.subscribe(channel)

    row_a = await db.fetchval("insert into rt_owned (owner, body) values ($1, 'for a') returning id", user_a)
    row_b = await db.fetchval("insert into rt_owned (owner, body) values ($1, 'for b') returning id", user_b)

    first_for_b = await next_event(queues[user_b])
    assert first_for_b["record"] == {"id": row_b, "owner": user_b, "body": "for b"}
    assert queues[user_b].empty()  # A's row committed first: it would have come before B's
    assert (await next_event(queues[user_a]))["record"]["id"] == row_a
    assert queues[user_a].empty()


async def test_delete_on_an_rls_table_sends_only_the_primary_key(
    stack: Stack, connect: Callable[..., Any], db: asyncpg.Connection
) -> None:
    owner = str(uuid.uuid4())
    row = await db.fetchval("insert into rt_owned (owner, body) values ($1, 'bye') returning id", owner)
    subscriber = await connect(stack.user_token(owner))
    events: asyncio.Queue[Event] = asyncio.Queue()
    channel = subscriber.channel()
    channel.on_postgres_changes("DELETE", collect(events), "rt_owned", filter=f"id=eq.{row}")
    await subscriber.subscribe(channel)
    await db.execute("delete from rt_owned where id = $1", row)
    deleted = await next_event(events)
    assert deleted["old_record"] == {"id": row}


async def test_payload_columns_are_those_the_role_may_select(
    stack: Stack, connect: Callable[..., Any], db: asyncpg.Connection
) -> None:
    label = tag()
    queues: dict[str, asyncio.Queue[Event]] = {"anon": asyncio.Queue(), "service": asyncio.Queue()}
    for name, token in (("anon", None), ("service", stack.service_key)):
        subscriber = await connect(token)
        channel = subscriber.channel()
        channel.on_postgres_changes("INSERT", collect(queues[name]), "rt_columns", filter=f"label=eq.{label}")
        await subscriber.subscribe(channel)
    row = await db.fetchval("insert into rt_columns (label, secret) values ($1, 'hush') returning id", label)
    as_anon, as_service = await next_event(queues["anon"]), await next_event(queues["service"])
    assert as_anon["record"] == {"id": row, "label": label}
    assert [c["name"] for c in as_anon["columns"]] == ["id", "label"]
    assert as_service["record"] == {"id": row, "label": label, "secret": "hush"}


async def test_access_token_update_switches_whose_rows_arrive(
    stack: Stack, connect: Callable[..., Any], db: asyncpg.Connection
) -> None:
    user_a, user_b = str(uuid.uuid4()), str(uuid.uuid4())
    subscriber = await connect(stack.user_token(user_a))
    events: asyncio.Queue[Event] = asyncio.Queue()
    config = {"broadcast": {"ack": True, "self": False}, "presence": {"key": "", "enabled": False}, "private": False}
    channel = subscriber.channel(config=config)
    channel.on_postgres_changes("INSERT", collect(events), "rt_owned")
    await subscriber.subscribe(channel)

    await subscriber.client.realtime.set_auth(stack.user_token(user_b))
    # The socket handles messages in order: once a later push is acknowledged, the token is in use.
    acked = asyncio.Event()
    push = await channel.push("broadcast", {"type": "broadcast", "event": "sync", "payload": {}})
    push.receive("ok", lambda _response: acked.set())
    await asyncio.wait_for(acked.wait(), WAIT)

    await db.execute("insert into rt_owned (owner, body) values ($1, 'old identity')", user_a)
    row_b = await db.fetchval("insert into rt_owned (owner, body) values ($1, 'new identity') returning id", user_b)
    assert (await next_event(events))["record"]["id"] == row_b
    assert events.empty()


async def test_an_expired_token_cannot_join(stack: Stack, connect: Callable[..., Any]) -> None:
    subscriber = await connect(stack.user_token(str(uuid.uuid4()), lifetime=-10))
    channel = subscriber.channel()
    channel.on_postgres_changes("*", lambda p: None, "rt_items")
    await channel.subscribe(lambda state, error: subscriber.states.put_nowait((state.value, str(error))))
    state, error = await subscriber.next_state()
    assert state == RealtimeSubscribeStates.CHANNEL_ERROR.value
    assert error is not None and "Token has expired" in error


@pytest.mark.local_only
async def test_changes_committed_while_the_replication_connection_is_down_still_arrive(
    stack: Stack, connect: Callable[..., Any], db: asyncpg.Connection
) -> None:
    label = tag()
    subscriber = await connect()
    events: asyncio.Queue[Event] = asyncio.Queue()
    channel = subscriber.channel()
    channel.on_postgres_changes("INSERT", collect(events), "rt_items", filter=f"label=eq.{label}")
    await subscriber.subscribe(channel)
    killed = await db.fetchval(
        "select count(pg_terminate_backend(pid)) from pg_stat_replication "
        "where application_name = 'neiromatrius realtime'"
    )
    assert killed >= 1  # the stack's replication connection is gone; it reconnects to its slot
    for qty in (1, 2):
        await db.execute("insert into rt_items (label, qty) values ($1, $2)", label, qty)
    assert [(await next_event(events))["record"]["qty"] for _ in range(2)] == [1, 2]
    assert events.empty()


@pytest.mark.local_only
async def test_the_rls_check_waits_until_the_decoded_transaction_is_visible(stack: Stack) -> None:
    """Logical decoding sees a commit once it is flushed, a moment before the committing backend leaves the
    proc array; the RLS check by primary key must wait for that, or it misses the row just inserted."""
    pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=2)
    writer = await asyncpg.connect(stack.database_url)
    try:
        open_tx = writer.transaction()
        await open_tx.start()
        await writer.execute("insert into rt_items (label, qty) values ($1, 1)", tag())
        xid = int(await writer.fetchval("select pg_current_xact_id()::text::bigint")) % 2**32
        waiting = asyncio.create_task(wait_until_visible(pool, xid))
        done, _ = await asyncio.wait({waiting}, timeout=0.5)
        assert not done  # still running: the check must not go ahead
        await open_tx.commit()
        await asyncio.wait_for(waiting, 5)  # committed: it returns
        await wait_until_visible(pool, xid)  # and returns at once for a finished transaction
    finally:
        await writer.close()
        await pool.close()
