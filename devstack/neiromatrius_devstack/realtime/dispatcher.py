"""From committed transactions to ``postgres_changes`` pushes, one change at a time, in commit order.

Per change: the matching bindings (table, action, and joined before the commit); a change no binding
matches is dropped before its values are decoded, and bindings a filter surely rejects (decided on the
decoded values, see ``render.surely_fails``) before any query. Then one query that
renders the values and evaluates every filter, one RLS check per distinct set of claims (none for a
role RLS does not apply to, such as service_role), then one payload per (readable columns, ``select``)
shared by every subscriber it fits.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from datetime import datetime
from json.encoder import encode_basestring_ascii
from typing import Any

import asyncpg

from .catalog import Catalog, ColumnInfo, TableInfo
from .changes import Change, ChangeFeed, PendingChange, Transaction
from .render import Rendered, filter_values, may_pass, present, render
from .rls import role_of, row_visible, wait_until_visible
from .serializers import RawJSON, dumps
from .subscriptions import Binding, Listener, Registry

log = logging.getLogger(__name__)


def commit_timestamp(moment: datetime) -> str:
    """Realtime's ``YYYY-MM-DD"T"HH24:MI:SS.MS"Z"`` in UTC (milliseconds, truncated)."""
    m = moment  # formatted by hand: strftime costs several times more, once per change
    date = f"{m.year:04d}-{m.month:02d}-{m.day:02d}"
    return f"{date}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond // 1000:03d}Z"


def _object(columns: list[ColumnInfo], values: dict[str, str]) -> RawJSON:
    items = (f"{encode_basestring_ascii(c.name)}:{values[c.name]}" for c in columns if c.name in values)
    return RawJSON("{" + ",".join(items) + "}")


def build_data(
    change: Change,
    table: TableInfo,
    rendered: Rendered,
    readable: frozenset[str],
    select: tuple[str, ...] | None,
    committed: datetime,
) -> RawJSON:
    """The ``data`` of a postgres_changes push, for one role and column selection."""
    wanted = readable if select is None else readable & (set(select) | set(table.primary_key))
    columns = [c for c in table.columns if c.name in wanted]
    errors: list[str] | None = None
    if not table.primary_key:
        errors = ["Error 400: Bad Request, no primary key"]
    elif not set(table.primary_key) <= readable:
        errors = ["Error 401: Unauthorized"]
    data: dict[str, Any] = {
        "schema": table.schema,
        "table": table.name,
        "commit_timestamp": commit_timestamp(committed),
        "type": change.action,
        "errors": errors,
        "columns": [{"name": c.name, "type": c.typname} for c in columns],
    }
    if change.action in ("INSERT", "UPDATE"):
        # An unchanged TOASTed value is absent from the new tuple; a full old row still has it.
        data["record"] = _object(columns, {**rendered.old, **rendered.new} if change.old_full else rendered.new)
    if change.action == "UPDATE":
        if change.old is not None:
            data["old_record"] = _object(columns, rendered.old)
        else:  # the key did not change, so the identity is the new row's key
            identity = {c.name for c in change.relation.columns if c.is_key}
            data["old_record"] = _object([c for c in columns if c.name in identity], rendered.new)
    elif change.action == "DELETE":
        kept = [c for c in columns if c.name in table.primary_key] if table.rls else columns
        data["old_record"] = _object(kept, rendered.old)
    return RawJSON(dumps(data))


def _claims_key(claims: dict[str, Any]) -> str:
    return json.dumps(claims, sort_keys=True)


class Dispatcher:
    def __init__(self, pool: asyncpg.Pool, feed: ChangeFeed, registry: Registry) -> None:
        self.pool = pool
        self.feed = feed
        self.registry = registry
        self.catalog = Catalog(pool)
        self._visible_xids: collections.deque[int] = collections.deque(maxlen=16)  # recent, already awaited
        self.decoded = 0  # changes whose values were decoded: only those some binding matched
        self.rendered = 0  # changes rendered by a query: only those some binding's filters may pass
        self.checked = 0  # RLS checks run (one per change and distinct claims): none for roles RLS spares

    async def run(self) -> None:
        while True:
            transaction = await self.feed.transactions.get()
            for pending in transaction.changes:
                try:
                    await self._dispatch(pending, transaction)
                except Exception:  # one bad change must not stop the feed for everyone
                    relation = pending.relation
                    log.exception("could not dispatch a change of %s.%s", relation.schema, relation.name)
            self.feed.delivered(transaction)

    async def _dispatch(self, pending: PendingChange, transaction: Transaction) -> None:
        relation = pending.relation
        targets = [
            (listener, bindings)
            for listener, bindings in self.registry.matching(relation.schema, relation.name, pending.action)
            if transaction.commit_lsn >= listener.since_lsn
        ]
        if not targets:
            return
        change = pending.decode()
        self.decoded += 1
        table = await self.catalog.table(relation)
        values = filter_values(change)
        targets = [
            (listener, kept)
            for listener, bindings in targets
            if (kept := [b for b in bindings if may_pass(b.filters, values, table)])
        ]
        if not targets:
            return
        filters = {f for _, bindings in targets for b in bindings for f in b.filters}
        rendered = await render(self.pool, change, table, filters)
        self.rendered += 1
        passing = [
            (listener, kept)
            for listener, bindings in targets
            if (kept := [b for b in bindings if all(rendered.matches[f] for f in b.filters)])
        ]
        if not passing:
            return
        visible = await self._visibility(change, table, [listener for listener, _ in passing], transaction.xid)
        payloads: dict[tuple[frozenset[str], tuple[str, ...] | None], RawJSON] = {}
        for listener, bindings in passing:
            if visible is not None and not visible[_claims_key(listener.claims)]:
                continue
            readable = await self.catalog.readable(relation, role_of(listener.claims))
            for select, group in _by_select(bindings).items():
                key = (readable, select)
                if key not in payloads:
                    payloads[key] = build_data(change, table, rendered, readable, select, transaction.commit_time)
                listener.deliver("postgres_changes", {"ids": [b.id for b in group], "data": payloads[key]})

    async def _visibility(
        self, change: Change, table: TableInfo, listeners: list[Listener], xid: int
    ) -> dict[str, bool] | None:
        """Per distinct claims, whether the row is visible now; None when no check applies."""
        if not table.rls or change.action == "DELETE" or not table.primary_key:
            return None
        key = present(change, change.new, key_only=False)
        distinct = {_claims_key(listener.claims): listener.claims for listener in listeners}
        visible: dict[str, bool] = {}
        if all(key.get(name) is not None for name in table.primary_key):
            # A role RLS does not apply to (service_role: BYPASSRLS) sees the row whatever its claims say:
            # its check could only ask whether the row exists, and the change just committed it. (A check
            # would also miss a row deleted in between: a race decided by when it runs; Realtime's runs
            # at its next poll, up to 100 ms after the commit.)
            for claims_key, claims in distinct.items():
                if await self.catalog.sees_every_row(change.relation, table, role_of(claims)):
                    visible[claims_key] = True
        checked = {k: claims for k, claims in distinct.items() if k not in visible}
        if not checked:
            return visible
        if xid not in self._visible_xids:  # once per transaction, before its first check (rls.wait_until_visible)
            await wait_until_visible(self.pool, xid)
            self._visible_xids.append(xid)
        self.checked += len(checked)
        results = await asyncio.gather(*(row_visible(self.pool, table, key, claims) for claims in checked.values()))
        return visible | dict(zip(checked, results, strict=True))


def _by_select(bindings: list[Binding]) -> dict[tuple[str, ...] | None, list[Binding]]:
    groups: dict[tuple[str, ...] | None, list[Binding]] = {}
    for binding in bindings:
        groups.setdefault(binding.select, []).append(binding)
    return groups
