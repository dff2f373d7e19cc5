"""The change feed: committed row changes of the ``supabase_realtime`` tables, in commit order.

A logical replication slot with the ``pgoutput`` plugin streams every transaction as soon as it
commits, whichever process wrote it; Postgres itself keeps to the publication (tables added
later included). The slot is ours alone (``neiromatrius_rt_<pid>_<random>``), dropped on stop;
slots of ours left inactive by a killed process are dropped on start. The slot's confirmed
position only moves past a transaction once the dispatcher has delivered it, so a dropped
replication connection is re-opened without losing or repeating a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import secrets
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from . import pgoutput
from .pgwire import PgWireError, ReplicationConnection

log = logging.getLogger(__name__)

SLOT_PREFIX = "neiromatrius_rt_"
SLOT_PATTERN = r"neiromatrius\_rt\_%"  # LIKE, with the underscores taken literally
FEEDBACK_INTERVAL = 1.0
DROP_TIMEOUT = 10.0
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)
_PG_EPOCH_UNIX = 946_684_800


@dataclass(frozen=True)
class Change:
    relation: pgoutput.Relation
    action: str
    new: pgoutput.Tuple | None
    old: pgoutput.Tuple | None
    old_full: bool


@dataclass(frozen=True)
class PendingChange:
    """A change as the feed hands it over: its values are decoded only if someone listens to its table."""

    relation: pgoutput.Relation  # as of the change: a later Relation message does not alter it
    message: pgoutput.RowMessage

    @property
    def action(self) -> str:
        return self.message.action

    def decode(self) -> Change:
        row = self.message.decode()
        return Change(self.relation, row.action, row.new, row.old, row.old_full)


@dataclass
class Transaction:
    commit_lsn: int
    end_lsn: int
    commit_time: datetime
    changes: list[PendingChange] = field(default_factory=list)
    xid: int = 0  # 32-bit, as pgoutput sends it


class ChangeFeed:
    """Owns the slot and the replication connection; hands out :class:`Transaction` objects."""

    def __init__(self, dsn: str, publication: str = "supabase_realtime") -> None:
        self.dsn = dsn
        self.publication = publication
        self.slot = f"{SLOT_PREFIX}{os.getpid()}_{secrets.token_hex(3)}"
        self.transactions: asyncio.Queue[Transaction] = asyncio.Queue()
        self._conn: ReplicationConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._relations: dict[int, pgoutput.Relation] = {}
        self._generations = itertools.count(1)
        self._open: Transaction | None = None
        self._received = 0  # highest WAL position seen
        self._confirmed = 0  # everything before it has been delivered
        self._last_queued = 0  # end of the last transaction queued, to skip replays after a reconnect
        self._in_flight = 0
        self._stopping = False

    async def start(self) -> None:
        """Create the slot and start streaming; changes committed from now on are delivered."""
        await self._connect_with(self._first_stream)
        self._task = asyncio.create_task(self._run(), name="realtime change feed")

    async def _connect_with(self, prepare: Callable[[ReplicationConnection], Awaitable[None]]) -> ReplicationConnection:
        """A replication connection made ready by ``prepare``, or closed again if that fails."""
        conn = await ReplicationConnection.connect(self.dsn, "neiromatrius realtime")
        try:
            await prepare(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    async def _first_stream(self, conn: ReplicationConnection) -> None:
        await self._drop_stale_slots(conn)
        await self._create_slot(conn)
        await self._start_streaming(conn)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_connection()
        try:
            conn = await ReplicationConnection.connect(self.dsn, "neiromatrius realtime cleanup")
        except (OSError, PgWireError, TimeoutError) as exc:
            log.warning("could not drop replication slot %s: %s", self.slot, exc)
            return
        try:
            async with asyncio.timeout(DROP_TIMEOUT):  # WAIT: until the old walsender lets go of it
                await conn.query(f'DROP_REPLICATION_SLOT "{self.slot}" WAIT')
        except (PgWireError, TimeoutError) as exc:
            log.warning("could not drop replication slot %s: %s", self.slot, exc)
        finally:
            conn.close()
            await conn.wait_closed()

    def delivered(self, transaction: Transaction) -> None:
        """The dispatcher is done with ``transaction``: the slot may move past it."""
        self._in_flight -= 1
        self._confirmed = max(self._confirmed, transaction.end_lsn)

    async def _drop_stale_slots(self, conn: ReplicationConnection) -> None:
        rows = await conn.query(
            "select slot_name from pg_replication_slots where not active and database = current_database() "
            f"and slot_name like '{SLOT_PATTERN}'"
        )
        for (name,) in rows:
            try:
                await conn.query(f"select pg_drop_replication_slot('{name}')")
                log.info("dropped stale replication slot %s", name)
            except PgWireError as exc:  # it came back to life meanwhile
                log.info("kept replication slot %s: %s", name, exc)

    async def _create_slot(self, conn: ReplicationConnection) -> None:
        try:
            await conn.query(f"CREATE_REPLICATION_SLOT \"{self.slot}\" LOGICAL pgoutput (SNAPSHOT 'nothing')")
        except PgWireError as exc:
            if exc.code != "42601":  # PostgreSQL < 15 only knows the old spelling
                raise
            await conn.query(f'CREATE_REPLICATION_SLOT "{self.slot}" LOGICAL pgoutput NOEXPORT_SNAPSHOT')

    async def _start_streaming(self, conn: ReplicationConnection) -> None:
        await conn.start_copy_both(
            f'START_REPLICATION SLOT "{self.slot}" LOGICAL 0/0 '
            f"(proto_version '1', publication_names '\"{self.publication}\"')"
        )

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            conn = self._conn
            try:
                if conn is None:
                    conn = await self._reconnect()
                    attempt = 0
                await self._stream(conn)
            except (OSError, EOFError, asyncio.IncompleteReadError, PgWireError, TimeoutError) as exc:
                if self._stopping:
                    return
                log.warning("replication stream interrupted (%s); reconnecting", exc)
                await self._close_connection()
                self._open = None
                await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
                attempt += 1

    async def _reconnect(self) -> ReplicationConnection:
        return await self._connect_with(self._resume_stream)

    async def _resume_stream(self, conn: ReplicationConnection) -> None:
        exists = await conn.query(f"select 1 from pg_replication_slots where slot_name = '{self.slot}'")
        if not exists:
            log.error("replication slot %s vanished; changes since it went are lost", self.slot)
            await self._create_slot(conn)
        await self._start_streaming(conn)

    async def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            await conn.wait_closed()

    async def _stream(self, conn: ReplicationConnection) -> None:
        feedback = asyncio.create_task(self._feedback_loop(conn), name="realtime feed status")
        try:
            while True:
                data = await conn.read_copy_data()
                if data[:1] == b"w":
                    start, _end, _clock = struct.unpack_from("!qqq", data, 1)
                    self._received = max(self._received, start)
                    self._handle(pgoutput.decode(data[25:]))
                elif data[:1] == b"k":
                    wal_end, _clock, reply = struct.unpack_from("!qqb", data, 1)
                    self._received = max(self._received, wal_end)
                    if self._open is None and self._in_flight == 0:
                        self._confirmed = max(self._confirmed, wal_end)
                    if reply:
                        await self._send_feedback(conn)
        finally:
            feedback.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await feedback

    async def _feedback_loop(self, conn: ReplicationConnection) -> None:
        while True:
            await asyncio.sleep(FEEDBACK_INTERVAL)
            await self._send_feedback(conn)

    def _handle(self, message: pgoutput.Message) -> None:
        if isinstance(message, pgoutput.Begin):
            self._open = Transaction(message.final_lsn, 0, message.commit_time, xid=message.xid)
        elif isinstance(message, pgoutput.Relation):
            self._relations[message.oid] = dataclasses.replace(message, generation=next(self._generations))
        elif isinstance(message, pgoutput.RowMessage) and self._open is not None:
            self._open.changes.append(PendingChange(self._relations[message.relation_oid], message))
        elif isinstance(message, pgoutput.Commit) and self._open is not None:
            transaction, self._open = self._open, None
            transaction.end_lsn = message.end_lsn
            if transaction.end_lsn <= self._last_queued:
                return  # re-sent after a reconnect: already delivered or queued
            self._last_queued = transaction.end_lsn
            if transaction.changes:
                self._in_flight += 1
                self.transactions.put_nowait(transaction)
            elif self._in_flight == 0:
                self._confirmed = max(self._confirmed, transaction.end_lsn)

    async def _send_feedback(self, conn: ReplicationConnection) -> None:
        clock = int((time.time() - _PG_EPOCH_UNIX) * 1_000_000)
        confirmed = self._confirmed
        status = b"r" + struct.pack("!qqqqb", self._received, confirmed, confirmed, clock, 0)
        conn.send(b"d", status)
        await conn.flush()
