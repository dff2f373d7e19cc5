"""Realtime decodes a change's values only when some ``postgres_changes`` binding wants its table,
renders them (one query) only when some binding's filters may pass, and checks a row of an RLS table
only for subscribers RLS applies to.

The feed and the dispatcher run here, in the test's process, on a replication slot of their own, so the
dispatcher's counts of decoded, rendered and checked changes can be read; what it delivers is what the
stack would push.
"""

from __future__ import annotations

import asyncio
import dataclasses
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

SERVICE_ROLE: dict[str, Any] = {"role": "service_role"}


class Inbox:
    """A channel as the dispatcher sees it: it keeps every ``postgres_changes`` data it is handed."""

    topic = "realtime:decoding"

    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims
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

    async def subscribe(self, claims: dict[str, Any] | None = None, **params: str) -> Inbox:
        """As a join does: registered, then live from the WAL position noted once registered."""
        inbox = Inbox(claims or SERVICE_ROLE)
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


async def test_a_service_role_subscriber_gets_every_row_of_an_rls_table_without_a_check(
    realtime: Realtime, db: asyncpg.Connection
) -> None:
    owned = await realtime.subscribe(event="INSERT", schema="public", table="rt_owned")
    owners = [uuid.uuid4(), uuid.uuid4()]
    ids = [await db.fetchval("insert into rt_owned (owner, body) values ($1, 'x') returning id", o) for o in owners]
    events = [await owned.next() for _ in ids]
    assert [(e["record"]["id"], e["record"]["owner"]) for e in events] == list(zip(ids, map(str, owners), strict=True))
    assert realtime.dispatcher.checked == 0


async def test_rls_is_checked_only_for_the_subscribers_it_applies_to(
    realtime: Realtime, db: asyncpg.Connection
) -> None:
    owner, stranger = uuid.uuid4(), uuid.uuid4()
    user = {"role": "authenticated", "sub": str(owner), "aud": "authenticated"}
    as_service = await realtime.subscribe(event="INSERT", schema="public", table="rt_owned")
    as_owner = await realtime.subscribe(user, event="INSERT", schema="public", table="rt_owned")
    insert = "insert into rt_owned (owner, body) values ($1, $2) returning id"
    ids = [await db.fetchval(insert, who, body) for who, body in ((owner, "a"), (stranger, "b"), (owner, "c"))]
    assert [(await as_service.next())["record"]["id"] for _ in ids] == ids
    assert [(await as_owner.next())["record"]["id"] for _ in range(2)] == [ids[0], ids[2]]
    assert as_owner.events.empty()  # the stranger's row, dispatched before the third, was refused
    assert realtime.dispatcher.checked == 3  # one check a change: the owner's claims; none for service_role


async def test_only_roles_rls_does_not_apply_to_see_every_row(realtime: Realtime, db: asyncpg.Connection) -> None:
    catalog = realtime.dispatcher.catalog
    relation = await _relation(db, "rt_owned")
    table = await catalog.table(relation)
    roles = ("service_role", "postgres", "authenticated", "anon", "no_such_role", "nul\x00")
    # This pool connects as postgres, which may become any role; the stack's own (authenticator) could not
    # become postgres, so there its answer for postgres is False, as its RLS check would refuse it.
    seen = {role: await catalog.sees_every_row(relation, table, role) for role in roles}
    assert seen == {"service_role": True, "postgres": True, "authenticated": False, "anon": False,
                    "no_such_role": False, "nul\x00": False}  # fmt: skip


async def test_a_table_owner_sees_every_row_unless_the_table_forces_rls(
    realtime: Realtime, db: asyncpg.Connection
) -> None:
    role, name = f"rt_owner_{uuid.uuid4().hex[:8]}", f"rt_forced_{uuid.uuid4().hex[:8]}"
    await db.execute(f"create role {role} nologin nobypassrls")
    try:
        await db.execute(f"create table public.{name} (id bigint primary key)")
        await db.execute(f"alter table public.{name} owner to {role}, enable row level security")
        catalog = realtime.dispatcher.catalog
        relation = await _relation(db, name)
        assert await catalog.sees_every_row(relation, await catalog.table(relation), role)
        assert not await catalog.sees_every_row(relation, await catalog.table(relation), "authenticated")
        # pgoutput sends a new Relation message after the ALTER: a new generation, asked afresh.
        await db.execute(f"alter table public.{name} force row level security")
        forced = dataclasses.replace(relation, generation=relation.generation + 1)
        assert not await catalog.sees_every_row(forced, await catalog.table(forced), role)
    finally:
        await db.execute(f"drop table if exists public.{name}; drop role {role}")


async def _relation(db: asyncpg.Connection, name: str) -> pgoutput.Relation:
    """The Relation message pgoutput would send for ``public.<name>`` (generation 1)."""
    oid = await db.fetchval("select $1::regclass::oid", f"public.{name}")
    rows = await db.fetch(
        "select a.attname, a.atttypid, a.atttypmod, coalesce(a.attnum = any(i.indkey), false) as is_key "
        "from pg_attribute a left join pg_index i on i.indrelid = a.attrelid and i.indisprimary "
        "where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped order by a.attnum",
        oid,
    )
    columns = tuple(pgoutput.Column(r["attname"], r["atttypid"], r["atttypmod"], r["is_key"]) for r in rows)
    return pgoutput.Relation(oid, "public", name, "d", columns, generation=1)


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
