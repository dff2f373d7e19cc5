"""Decoder for the ``pgoutput`` logical replication protocol, version 1 (text-format values).

Only what a change feed needs: Begin, Commit, Relation and the row messages. A row message is
decoded in two steps: its kind and relation at once (:class:`RowMessage`), its values only when
someone listens to that table (:meth:`RowMessage.decode`). Values stay as the server's text output;
the caller casts them back to their column types in Postgres.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class Unchanged:
    """A TOASTed value the UPDATE did not touch: the WAL does not carry it."""

    _instance: Unchanged | None = None

    def __new__(cls) -> Unchanged:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = Unchanged()
Value = str | None | Unchanged
Tuple = tuple[Value, ...]


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int
    type_modifier: int
    is_key: bool


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    replica_identity: str  # d(efault), n(othing), f(ull), i(ndex)
    columns: tuple[Column, ...]
    #: Set by the feed: a new Relation message (sent after any DDL or GRANT) gets a new number,
    #: so what was learnt from the catalogue about the previous one is not reused.
    generation: int = 0


@dataclass(frozen=True)
class Begin:
    final_lsn: int
    commit_time: datetime
    xid: int


@dataclass(frozen=True)
class Commit:
    commit_lsn: int
    end_lsn: int
    commit_time: datetime


@dataclass(frozen=True)
class RowChange:
    """An INSERT, UPDATE or DELETE. ``old`` is the old row when sent: the whole row under
    REPLICA IDENTITY FULL (``old_full``), else only its key columns (the others read as NULL)."""

    action: str  # INSERT | UPDATE | DELETE
    relation_oid: int
    new: Tuple | None
    old: Tuple | None
    old_full: bool = False


@dataclass(frozen=True)
class RowMessage:
    """An INSERT, UPDATE or DELETE whose values are not decoded yet: most changes nobody listens to."""

    action: str  # INSERT | UPDATE | DELETE
    relation_oid: int
    data: bytes  # the whole message

    def decode(self) -> RowChange:
        reader = _Reader(self.data)
        reader.pos = 5  # the kind and the relation's oid
        if self.action == "INSERT":
            reader.byte()  # 'N'
            return RowChange("INSERT", self.relation_oid, reader.tuple_data(), None)
        marker = reader.byte()
        if self.action == "DELETE":  # 'K' or 'O'
            return RowChange("DELETE", self.relation_oid, None, reader.tuple_data(), marker == b"O")
        old = None
        if marker in (b"K", b"O"):
            old = reader.tuple_data()
            reader.byte()  # 'N'
        return RowChange("UPDATE", self.relation_oid, reader.tuple_data(), old, marker == b"O")


Message = Begin | Commit | Relation | RowMessage | None
_ROW_ACTIONS = {b"I": "INSERT", b"U": "UPDATE", b"D": "DELETE"}


def pg_time(micros: int) -> datetime:
    return PG_EPOCH + timedelta(microseconds=micros)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def unpack(self, fmt: str) -> tuple[int, ...]:
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values

    def byte(self) -> bytes:
        self.pos += 1
        return self.data[self.pos - 1 : self.pos]

    def cstring(self) -> str:
        end = self.data.index(b"\x00", self.pos)
        text = self.data[self.pos : end].decode()
        self.pos = end + 1
        return text

    def tuple_data(self) -> Tuple:
        (count,) = self.unpack("!h")
        values: list[Value] = []
        for _ in range(count):
            kind = self.byte()
            if kind == b"n":
                values.append(None)
            elif kind == b"u":
                values.append(UNCHANGED)
            elif kind == b"t":
                (size,) = self.unpack("!i")
                values.append(self.data[self.pos : self.pos + size].decode())
                self.pos += size
            else:
                raise ValueError(f"unsupported tuple value kind {kind!r} (binary mode is not requested)")
        return tuple(values)


def decode(data: bytes) -> Message:
    """Decode one pgoutput message (a row message's values wait for :meth:`RowMessage.decode`); kinds a feed
    does not need (Origin, Type, Truncate…) give None."""
    reader = _Reader(data)
    kind = reader.byte()
    if kind == b"B":
        final_lsn, micros, xid = reader.unpack("!qqI")
        return Begin(final_lsn, pg_time(micros), xid)
    if kind == b"C":
        _flags, commit_lsn, end_lsn, micros = reader.unpack("!bqqq")
        return Commit(commit_lsn, end_lsn, pg_time(micros))
    if kind == b"R":
        return _relation(reader)
    action = _ROW_ACTIONS.get(kind)
    if action is not None:
        (oid,) = reader.unpack("!I")
        return RowMessage(action, oid, data)
    return None


def _relation(reader: _Reader) -> Relation:
    (oid,) = reader.unpack("!I")
    schema = reader.cstring() or "pg_catalog"
    name = reader.cstring()
    identity = chr(reader.unpack("!b")[0])
    (count,) = reader.unpack("!h")
    columns = []
    for _ in range(count):
        (flags,) = reader.unpack("!b")
        column_name = reader.cstring()
        type_oid, modifier = reader.unpack("!Ii")
        columns.append(Column(column_name, type_oid, modifier, bool(flags & 1)))
    return Relation(oid, schema, name, identity, tuple(columns))
