"""Phoenix frames, V2 binary broadcasts, pgoutput messages and the replication client's SCRAM step."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime

import pytest

from neiromatrius_devstack.realtime import pgoutput
from neiromatrius_devstack.realtime.dispatcher import commit_timestamp
from neiromatrius_devstack.realtime.pgwire import ConnectParams, _Scram
from neiromatrius_devstack.realtime.serializers import (
    V1,
    V2,
    FrameError,
    RawJSON,
    decode_binary,
    decode_text,
    dumps,
    encode,
    encode_binary_broadcast,
    negotiate,
)


def test_v1_server_frames_carry_only_topic_event_payload_ref() -> None:
    frame = json.loads(encode(V1, "1", "3", "realtime:room", "phx_reply", {"status": "ok", "response": {}}))
    assert frame == {
        "topic": "realtime:room",
        "event": "phx_reply",
        "payload": {"status": "ok", "response": {}},
        "ref": "3",
    }


def test_v2_server_frames_are_five_element_arrays() -> None:
    assert json.loads(encode(V2, None, "7", "phoenix", "phx_reply", {})) == [None, "7", "phoenix", "phx_reply", {}]


def test_raw_json_is_embedded_verbatim() -> None:
    text = dumps({"data": {"record": RawJSON('{"price":1.50,"meta":{"a": 1}}')}, "ids": [1]})
    assert text == '{"data":{"record":{"price":1.50,"meta":{"a": 1}}},"ids":[1]}'


def test_dumps_writes_what_json_dumps_writes() -> None:
    """Keys as ``json.dumps(key)`` (ASCII escapes), values as ``json.dumps(v, ensure_ascii=False)``."""
    value = {
        "ёж": ['ёж "q" \\ \n \u2028 \x01', None, True, False, 0, -7, 2**70, 1.5, float("inf")],
        "nested": {"k": [], "e": {}, "t": ("a", 1)},
        7: "int key",
    }
    reference = (
        "{"
        + ",".join(
            f"{json.dumps(str(k))}:{json.dumps(v, ensure_ascii=False, separators=(',', ':'))}" for k, v in value.items()
        )
        + "}"
    )
    assert dumps(value) == reference


def test_decoding_client_frames() -> None:
    v1 = decode_text(V1, '{"event":"heartbeat","payload":{},"topic":"phoenix","ref":null,"join_ref":null}')
    assert (v1.topic, v1.event, v1.ref, v1.join_ref) == ("phoenix", "heartbeat", None, None)
    v2 = decode_text(V2, '["1","2","realtime:a","phx_join",{"config":{}}]')
    assert (v2.join_ref, v2.ref, v2.topic, v2.event, v2.payload) == ("1", "2", "realtime:a", "phx_join", {"config": {}})
    with pytest.raises(FrameError):
        decode_text(V2, '{"event":"heartbeat"}')


def test_negotiating_the_serializer() -> None:
    assert (negotiate(None), negotiate("1.0.0"), negotiate("2.0.0"), negotiate("3.0.0")) == (V1, V1, V2, None)


def _kind3(join_ref: str, ref: str, topic: str, event: str, meta: str, encoding: int, body: bytes) -> bytes:
    parts = [p.encode() for p in (join_ref, ref, topic, event, meta)]
    return bytes([3, *map(len, parts), encoding]) + b"".join(parts) + body


def test_binary_user_broadcast_push_with_a_json_payload() -> None:
    frame = decode_binary(_kind3("1", "4", "realtime:room", "ping", "", 1, b'{"n":"\xc3\xa9"}'))
    assert (frame.join_ref, frame.ref, frame.topic, frame.event) == ("1", "4", "realtime:room", "broadcast")
    assert frame.payload == {"type": "broadcast", "event": "ping", "payload": {"n": "é"}}
    assert frame.binary is None


def test_binary_user_broadcast_push_with_a_binary_payload() -> None:
    frame = decode_binary(_kind3("1", "", "realtime:ёж", "blob", '{"persist":false}', 0, b"\x00\x01"))
    assert frame.ref is None and frame.topic == "realtime:ёж"
    assert frame.binary == b"\x00\x01" and frame.payload["meta"] == {"persist": False}


def test_truncated_or_foreign_binary_frames_are_refused() -> None:
    with pytest.raises(FrameError):
        decode_binary(_kind3("1", "2", "realtime:room", "e", "", 1, b"")[:10])
    with pytest.raises(FrameError):
        decode_binary(b"\x04\x00")


def test_binary_user_broadcast_for_v2_receivers() -> None:
    data = encode_binary_broadcast("realtime:r", "blob", b"\xff")
    assert data == bytes([4, 10, 4, 0, 0]) + b"realtime:r" + b"blob" + b"\xff"


def test_commit_timestamp_has_milliseconds_and_zulu() -> None:
    assert commit_timestamp(datetime(2026, 11, 25, 23, 44, 44, 465797, tzinfo=UTC)) == "2026-11-25T23:44:44.465Z"
    assert commit_timestamp(datetime(2026, 1, 2, 3, 4, 5, 999, tzinfo=UTC)) == "2026-01-02T03:04:05.000Z"


def _tuple(*values: str | None) -> bytes:
    out = struct.pack("!h", len(values))
    for value in values:
        if value is None:
            out += b"n"
        else:
            raw = value.encode()
            out += b"t" + struct.pack("!i", len(raw)) + raw
    return out


def test_pgoutput_relation_and_rows() -> None:
    relation = pgoutput.decode(
        b"R" + struct.pack("!I", 16384) + b"public\x00rt_items\x00" + b"f" + struct.pack("!h", 2)
        + b"\x01id\x00" + struct.pack("!Ii", 20, -1) + b"\x00label\x00" + struct.pack("!Ii", 25, -1)
    )  # fmt: skip
    assert isinstance(relation, pgoutput.Relation)
    assert (relation.schema, relation.name, relation.replica_identity) == ("public", "rt_items", "f")
    assert [(c.name, c.type_oid, c.is_key) for c in relation.columns] == [("id", 20, True), ("label", 25, False)]
    insert = _row(b"I" + struct.pack("!I", 16384) + b"N" + _tuple("1", "яблоко"))
    assert insert == pgoutput.RowChange("INSERT", 16384, ("1", "яблоко"), None)
    update = _row(b"U" + struct.pack("!I", 16384) + b"O" + _tuple("1", "a") + b"N" + _tuple("1", None))
    assert update == pgoutput.RowChange("UPDATE", 16384, ("1", None), ("1", "a"), old_full=True)
    key_update = _row(b"U" + struct.pack("!I", 16384) + b"K" + _tuple("1", None) + b"N" + _tuple("2", "b"))
    assert key_update == pgoutput.RowChange("UPDATE", 16384, ("2", "b"), ("1", None), old_full=False)
    plain_update = _row(b"U" + struct.pack("!I", 16384) + b"N" + _tuple("1", "c"))
    assert plain_update == pgoutput.RowChange("UPDATE", 16384, ("1", "c"), None, old_full=False)
    delete = _row(b"D" + struct.pack("!I", 16384) + b"K" + _tuple("1", None))
    assert delete == pgoutput.RowChange("DELETE", 16384, None, ("1", None), old_full=False)


def _row(data: bytes) -> pgoutput.RowChange:
    message = pgoutput.decode(data)
    assert isinstance(message, pgoutput.RowMessage)
    return message.decode()


def test_a_row_messages_values_are_left_alone_until_asked_for() -> None:
    """The feed reads only the kind and the table of a row message: values nobody listens to cost nothing."""
    data = b"I" + struct.pack("!I", 16384) + b"N" + struct.pack("!h", 1) + b"b" + struct.pack("!i", 1) + b"\x01"
    message = pgoutput.decode(data)  # binary values are never requested: decoding them would raise
    assert message == pgoutput.RowMessage("INSERT", 16384, data)
    with pytest.raises(ValueError, match="unsupported tuple value kind"):
        message.decode()


def test_pgoutput_unchanged_toast_and_transaction_bounds() -> None:
    row = _row(b"I" + struct.pack("!I", 1) + b"N" + struct.pack("!h", 1) + b"u")
    assert row.new == (pgoutput.UNCHANGED,)
    begin = pgoutput.decode(b"B" + struct.pack("!qqI", 0x16B3748, 1_000_000, 7))
    assert begin == pgoutput.Begin(0x16B3748, datetime(2000, 1, 1, 0, 0, 1, tzinfo=UTC), 7)
    commit = pgoutput.decode(b"C" + struct.pack("!bqqq", 0, 10, 20, 0))
    assert isinstance(commit, pgoutput.Commit) and (commit.commit_lsn, commit.end_lsn) == (10, 20)
    assert pgoutput.format_lsn(0x1_0000_00A0) == "1/A0" and pgoutput.parse_lsn("1/A0") == 0x1_0000_00A0


def test_dsn_parsing_for_the_replication_connection() -> None:
    tcp = ConnectParams.from_dsn("postgresql+asyncpg://postgres:p%40ss@127.0.0.1:5433/app")
    assert tcp == ConnectParams("127.0.0.1", 5433, "postgres", "p@ss", "app")
    unix = ConnectParams.from_dsn("postgresql://postgres@/postgres?host=/tmp/pg&port=6000")
    assert (unix.host, unix.port, unix.password) == ("/tmp/pg", 6000, None)


def test_scram_sha_256_matches_the_rfc_7677_example() -> None:
    scram = _Scram("pencil")
    scram.nonce = "rOprNGfwEbeRWgbNEkqO"
    scram.first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO"
    server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    assert scram.final(server_first) == (
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    scram.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
