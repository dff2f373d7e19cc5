"""Realtime decodes a change's values only when some ``postgres_changes`` binding wants its table, and
renders them (one query) only when some binding's filters may pass.

The feed and the dispatcher run here, in the test's process, on a replication slot of their own, so the
dispatcher's count of decoded changes can be read; what it delivers is what the stack would push.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from neiromatrius_devstack.realtime import pgoutput
from neiromatrius_devstack.realtime.catalog import Catalog
from neiromatrius_devstack.realtime.changes import Change, ChangeFeed
from neiromatrius_devstack.realtime.dispatcher import Dispatcher
from neiromatrius_devstack.realtime.join import wal_position
from neiromatrius_devstack.realtime.render import filter_values, render, surely_fails
from neiromatrius_devstack.realtime.subscriptions import Filter, Registry, Subscription, parse_binding
from tests.conftest import Stack

pytestmark = pytest.mark.local_only


class Inbox:
    """A channel as the dispatcher sees it: it keeps every ``postgres_changes`` data it is handed."""

    topic = "realtime:decoding"
    claims: dict[str, Any] = {"role": "service_role"}  # noqa: RUF012 (the Listener protocol's attribute)

    def __init__(self) -> None:
        self.since_lsn = 0
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def deliver(self, event: str, payload: Any) -> None:
        assert event == "postgres_changes"
        self.events.put_nowait(json.loads(payload["data"]))

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.events.get(), 10)


class Realtime:
    def __init__(self, pool: asyncpg.Pool, dispatcher: Dispatcher, registry: Registry) -> None:
        self.pool = pool
        self.dispatcher = dispatcher
        self.registry = registry

    async def subscribe(self, **params: str) -> Inbox:
        """As a join does: registered, then live from the WAL position noted once registered."""
        inbox = Inbox()
        self.registry.add(Subscription(inbox, (parse_binding(params),)))
        inbox.since_lsn = await wal_position(self.pool)
        return inbox


@pytest.fixture
async def realtime(stack: Stack) -> AsyncIterator[Realtime]:
    pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=4)
    feed = ChangeFeed(stack.database_url)
    registry = Registry()
    dispatcher = Dispatcher(pool, feed, registry)
    await feed.start()
    task = asyncio.create_task(dispatcher.run())
    try:
        yield Realtime(pool, dispatcher, registry)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await feed.stop()
        await pool.close()


async def test_a_change_nobody_listens_to_is_not_decoded_and_a_later_subscription_decodes_its_table(
    realtime: Realtime, db: asyncpg.Connection
) -> None:
    label = f"dec-{uuid.uuid4().hex[:8]}"
    items = await realtime.subscribe(event="INSERT", schema="public", table="rt_items", filter=f"label=eq.{label}")
    await db.execute("insert into rt_full (label, qty) values ($1, 1)", label)  # published, but nobody listens
    await db.execute("insert into rt_items (label, qty) values ($1, 2)", label)
    first = await items.next()
    # Transactions are dispatched in commit order, so the rt_full insert has been seen by now.
    assert (first["table"], first["record"]["qty"]) == ("rt_items", 2)
    assert realtime.dispatcher.decoded == 1

    full = await realtime.subscribe(event="*", schema="public", table="rt_full")
    await db.execute("update rt_full set qty = 3 where label = $1", label)
    update = await full.next()
    assert (update["table"], update["type"]) == ("rt_full", "UPDATE")
    assert {k: update["record"][k] for k in ("label", "qty")} == {"label": label, "qty": 3}
    assert update["old_record"]["qty"] == 1  # REPLICA IDENTITY FULL: the old row whole
    assert [c["name"] for c in update["columns"]] == ["id", "label", "qty"]
    assert realtime.dispatcher.decoded == 2
    assert items.events.empty()


async def test_a_wildcard_binding_decodes_every_table_of_its_schema(realtime: Realtime, db: asyncpg.Connection) -> None:
    label = f"dec-{uuid.uuid4().hex[:8]}"
    everything = await realtime.subscribe(event="INSERT", schema="public")
    await db.execute("insert into rt_full (label, qty) values ($1, 4)", label)
    await db.execute("insert into rt_items (label, qty) values ($1, 5)", label)
    seen = [await everything.next() for _ in range(2)]
    assert [(e["table"], e["record"]["qty"]) for e in seen] == [("rt_full", 4), ("rt_items", 5)]
    assert realtime.dispatcher.decoded == 2


async def test_a_change_no_filter_lets_through_is_decoded_but_not_rendered(
    realtime: Realtime, db: asyncpg.Connection
) -> None:
    label = f"dec-{uuid.uuid4().hex[:8]}"
    items = await realtime.subscribe(event="INSERT", schema="public", table="rt_items", filter=f"label=eq.{label}")
    await db.execute("insert into rt_items (label, qty) values ($1, 1)", f"{label}-other")
    await db.execute("insert into rt_items (label, qty) values ($1, 2)", label)
    event = await items.next()
    assert (event["record"]["label"], event["record"]["qty"]) == (label, 2)
    assert (realtime.dispatcher.decoded, realtime.dispatcher.rendered) == (2, 1)
    assert items.events.empty()


async def test_filters_judged_without_postgres_agree_with_postgres(realtime: Realtime, db: asyncpg.Connection) -> None:
    """Whenever a filter is judged to fail without a query, the query finds it false too."""
    oid = await db.fetchval("select 'public.rt_items'::regclass::oid")
    rows = await db.fetch(
        "select attname, atttypid, atttypmod from pg_attribute where attrelid = $1 and attnum > 0 "
        "and not attisdropped order by attnum",
        oid,
    )
    columns = tuple(pgoutput.Column(r["attname"], r["atttypid"], r["atttypmod"], r["attname"] == "id") for r in rows)
    relation = pgoutput.Relation(oid, "public", "rt_items", "d", columns, generation=1)
    table = await Catalog(realtime.pool).table(relation)
    both = (False, True)
    filters = {
        *(Filter("label", op, v, negate) for op in ("eq", "neq") for v in ("apple", "Apple", "") for negate in both),
        *(Filter("label", "in", v, negate) for v in ("{apple,pear}", "{a,b}", "{pear}") for negate in both),
        Filter("label", "in", '{"apple",pear}'),
        Filter("label", "in", "{NULL,pear}", negate=True),
        Filter("label", "in", "{ apple ,pear}"),
        Filter("label", "like", "app%"),
        Filter("label", "is", "null", negate=True),
        Filter("qty", "eq", "2"),
        Filter("qty", "eq", "02"),
        Filter("price", "eq", "1.5"),
    }
    decided = 0
    for label in ("apple", "Apple", "apple ", "", "a,b", "pear", None):
        values = {"id": "1", "label": label, "qty": "2", "price": None}
        change = Change(relation, "INSERT", tuple(values.get(c.name) for c in columns), None, False)
        rendered = await render(realtime.pool, change, table, filters)
        for f in filters:
            if surely_fails(f, filter_values(change), table.column(f.column)):
                decided += 1
                assert rendered.matches[f] is False, (label, f)
    assert decided >= 40  # most of the grid is decided without a query
