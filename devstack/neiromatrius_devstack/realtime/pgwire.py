"""Just enough of the PostgreSQL wire protocol for a logical replication connection.

asyncpg cannot speak the streaming replication sub-protocol (CopyBoth), and wal2json is not
available here, so the change feed opens its own ``replication=database`` connection: startup,
password authentication (SCRAM-SHA-256, MD5 or cleartext; trust needs none), simple queries,
and the CopyBoth stream that ``START_REPLICATION`` opens.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

PROTOCOL_VERSION = 196608  # 3.0
CONNECT_TIMEOUT = 10.0


class PgWireError(Exception):
    """A server ErrorResponse or a protocol violation; ``code`` is the SQLSTATE when known."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ConnectParams:
    host: str
    port: int
    user: str
    password: str | None
    database: str

    @classmethod
    def from_dsn(cls, dsn: str) -> ConnectParams:
        """Parse a ``postgresql://`` URL; ``?host=/dir`` selects a Unix socket, as with libpq."""
        parts = urlsplit(dsn.replace("+asyncpg", "", 1))
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("the DSN must be a postgresql:// URL")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        user = unquote(parts.username) if parts.username else "postgres"
        return cls(
            host=query.get("host") or (unquote(parts.hostname) if parts.hostname else "127.0.0.1"),
            port=int(query.get("port") or parts.port or 5432),
            user=user,
            password=unquote(parts.password) if parts.password is not None else query.get("password"),
            database=parts.path.lstrip("/") or user,
        )


def _cstr(value: str) -> bytes:
    return value.encode() + b"\x00"


def _fields(body: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in body.split(b"\x00"):
        if part:
            out[chr(part[0])] = part[1:].decode(errors="replace")
    return out


class _Scram:
    """Client side of SCRAM-SHA-256 (RFC 5802/7677) without channel binding."""

    def __init__(self, password: str) -> None:
        self.password = password.encode()
        self.nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"
        self.auth_message = b""
        self.salted = b""

    def first(self) -> bytes:
        return f"n,,{self.first_bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        attrs = dict(item.split("=", 1) for item in server_first.decode().split(","))
        if not attrs["r"].startswith(self.nonce):
            raise PgWireError("SCRAM server nonce does not extend the client nonce")
        self.salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(attrs["s"]), int(attrs["i"]))
        without_proof = f"c=biws,r={attrs['r']}"
        self.auth_message = f"{self.first_bare},{server_first.decode()},{without_proof}".encode()
        client_key = hmac.digest(self.salted, b"Client Key", "sha256")
        signature = hmac.digest(hashlib.sha256(client_key).digest(), self.auth_message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        server_key = hmac.digest(self.salted, b"Server Key", "sha256")
        expected = base64.b64encode(hmac.digest(server_key, self.auth_message, "sha256")).decode()
        if server_final.decode() != f"v={expected}":
            raise PgWireError("SCRAM server signature mismatch")


class ReplicationConnection:
    """One ``replication=database`` session. Not safe for concurrent use."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, dsn: str, application_name: str) -> ReplicationConnection:
        params = ConnectParams.from_dsn(dsn)
        if params.host.startswith("/"):
            opening = asyncio.open_unix_connection(f"{params.host}/.s.PGSQL.{params.port}")
        else:
            opening = asyncio.open_connection(params.host, params.port)
        async with asyncio.timeout(CONNECT_TIMEOUT):
            reader, writer = await opening
        conn = cls(reader, writer)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await conn._startup(params, application_name)
        except BaseException:
            conn.close()
            raise
        return conn

    async def _startup(self, params: ConnectParams, application_name: str) -> None:
        body = struct.pack("!i", PROTOCOL_VERSION)
        for key, value in (
            ("user", params.user),
            ("database", params.database),
            ("replication", "database"),
            ("application_name", application_name),
        ):
            body += _cstr(key) + _cstr(value)
        body += b"\x00"
        self._writer.write(struct.pack("!i", len(body) + 4) + body)
        scram: _Scram | None = None
        while True:
            kind, data = await self.read_message()
            if kind == b"R":
                scram = await self._authenticate(data, params, scram)
            elif kind == b"Z":
                return
            # ParameterStatus, BackendKeyData and notices need no action.

    async def _authenticate(self, data: bytes, params: ConnectParams, scram: _Scram | None) -> _Scram | None:
        (code,) = struct.unpack_from("!i", data)
        if code == 0:
            return scram
        if params.password is None:
            raise PgWireError("the server asks for a password but the DSN has none")
        if code == 3:
            self.send(b"p", _cstr(params.password))
        elif code == 5:
            inner = hashlib.md5((params.password + params.user).encode()).hexdigest().encode()
            self.send(b"p", _cstr("md5" + hashlib.md5(inner + data[4:8]).hexdigest()))
        elif code == 10:
            if b"SCRAM-SHA-256\x00" not in data[4:]:
                raise PgWireError("the server offers no SCRAM-SHA-256")
            scram = _Scram(params.password)
            first = scram.first()
            self.send(b"p", _cstr("SCRAM-SHA-256") + struct.pack("!i", len(first)) + first)
        elif code == 11 and scram is not None:
            self.send(b"p", scram.final(data[4:]))
        elif code == 12 and scram is not None:
            scram.verify(data[4:])
        else:
            raise PgWireError(f"unsupported authentication request {code}")
        await self._writer.drain()
        return scram

    def send(self, kind: bytes, body: bytes) -> None:
        self._writer.write(kind + struct.pack("!i", len(body) + 4) + body)

    async def flush(self) -> None:
        await self._writer.drain()

    async def read_message(self) -> tuple[bytes, bytes]:
        """The next backend message; raises :class:`PgWireError` for an ErrorResponse."""
        header = await self._reader.readexactly(5)
        kind = header[:1]
        (length,) = struct.unpack_from("!i", header, 1)
        data = await self._reader.readexactly(length - 4)
        if kind == b"E":
            fields = _fields(data)
            raise PgWireError(fields.get("M", "server error"), fields.get("C"))
        return kind, data

    async def query(self, sql: str) -> list[tuple[str | None, ...]]:
        """Run a simple query (SQL or a replication command); rows come back as text."""
        self.send(b"Q", _cstr(sql))
        await self.flush()
        rows: list[tuple[str | None, ...]] = []
        error: PgWireError | None = None
        while True:
            try:
                kind, data = await self.read_message()
            except PgWireError as exc:
                error = exc
                continue
            if kind == b"D":
                rows.append(_data_row(data))
            elif kind == b"Z":
                if error is not None:
                    raise error
                return rows

    async def start_copy_both(self, command: str) -> None:
        """Send ``START_REPLICATION …`` and wait for the CopyBoth response."""
        self.send(b"Q", _cstr(command))
        await self.flush()
        while True:
            kind, _ = await self.read_message()
            if kind == b"W":
                return

    async def read_copy_data(self) -> bytes:
        """The next CopyData payload of the stream; raises EOFError when the server ends it."""
        while True:
            kind, data = await self.read_message()
            if kind == b"d":
                return data
            if kind in (b"c", b"C", b"Z"):
                raise EOFError("the server ended the replication stream")

    def close(self) -> None:
        if not self._writer.is_closing():
            try:
                self._writer.write(b"X\x00\x00\x00\x04")
            except (ConnectionError, RuntimeError):
                pass
            self._writer.close()

    async def wait_closed(self) -> None:
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def _data_row(data: bytes) -> tuple[str | None, ...]:
    (count,) = struct.unpack_from("!h", data)
    pos = 2
    values: list[str | None] = []
    for _ in range(count):
        (size,) = struct.unpack_from("!i", data, pos)
        pos += 4
        if size < 0:
            values.append(None)
        else:
            values.append(data[pos : pos + size].decode())
            pos += size
    return tuple(values)
