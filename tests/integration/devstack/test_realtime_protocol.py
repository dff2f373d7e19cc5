"""The Phoenix wire protocol as Realtime speaks it, frame by frame, over a plain websocket client.

These pin down what the client libraries rely on (V1 objects without join_ref, V2 arrays, replies,
system pushes, error reasons) and run unchanged against a real Supabase.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

import asyncpg
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.conftest import Stack

WAIT = 10.0
ITEMS = {"event": "INSERT", "schema": "public", "table": "rt_items"}


def socket_url(stack: Stack, vsn: str, apikey: str | None) -> str:
    query = {"vsn": vsn} | ({"apikey": apikey} if apikey is not None else {})
    return stack.url.replace("http", "ws", 1) + "/realtime/v1/websocket?" + urlencode(query)


def join_payload(postgres_changes: list[dict[str, Any]] | None = None, **broadcast: bool) -> dict[str, Any]:
    return {
        "config": {
            "broadcast": {"ack": broadcast.get("ack", False), "self": broadcast.get("self", False)},
            "presence": {"key": "", "enabled": False},
            "private": False,
            "postgres_changes": postgres_changes or [],
        }
    }


async def receive(ws: ClientConnection) -> Any:
    message = await asyncio.wait_for(ws.recv(), WAIT)
    return message if isinstance(message, bytes) else json.loads(message)


@pytest.fixture
async def open_socket(stack: Stack) -> AsyncIterator[Callable[[str], Any]]:
    sockets: list[ClientConnection] = []

    async def make(vsn: str = "1.0.0") -> ClientConnection:
        ws = await connect(socket_url(stack, vsn, stack.anon_key))
        sockets.append(ws)
        return ws

    yield make
    for ws in sockets:
        await ws.close()


def v1(topic: str, event: str, payload: Any, ref: str | None, join_ref: str | None = None) -> str:
    return json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref, "join_ref": join_ref})


def topic() -> str:
    return f"realtime:rt-{uuid.uuid4().hex[:12]}"


async def test_connecting_needs_a_known_api_key(stack: Stack) -> None:
    for apikey in (None, "not-a-key"):
        with pytest.raises(InvalidStatus) as info:
            async with connect(socket_url(stack, "1.0.0", apikey)):
                pass
        assert info.value.response.status_code == 401
        assert json.loads(info.value.response.body or b"{}")


async def test_frames_go_uncompressed_even_when_the_client_offers_permessage_deflate(stack: Stack) -> None:
    # Realtime's Phoenix endpoint does not enable compression: the handshake accepts no extension, and
    # every client pays no deflate on either side. (websockets offers permessage-deflate by default.)
    async with connect(socket_url(stack, "1.0.0", stack.anon_key)) as ws:
        assert ws.request is not None and ws.response is not None
        assert "permessage-deflate" in ws.request.headers.get("Sec-WebSocket-Extensions", "")
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        await ws.send(v1("phoenix", "heartbeat", {}, "1"))
        assert (await receive(ws))["payload"]["status"] == "ok"


async def test_v1_heartbeat_and_unmatched_topic(open_socket: Callable[[str], Any]) -> None:
    ws = await open_socket("1.0.0")
    await ws.send(v1("phoenix", "heartbeat", {}, None))
    assert await receive(ws) == {
        "topic": "phoenix", "event": "phx_reply", "payload": {"status": "ok", "response": {}}, "ref": None,
    }  # fmt: skip
    await ws.send(v1("phoenix", "heartbeat", {}, "2"))
    assert (await receive(ws))["ref"] == "2"
    await ws.send(v1("realtime:nobody-joined-this", "broadcast", {"type": "broadcast", "event": "x"}, "3", "1"))
    assert await receive(ws) == {
        "topic": "realtime:nobody-joined-this", "event": "phx_reply",
        "payload": {"status": "error", "response": {"reason": "unmatched topic"}}, "ref": "3",
    }  # fmt: skip


async def test_v1_join_reply_system_push_leave_and_close(open_socket: Callable[[str], Any]) -> None:
    ws = await open_socket("1.0.0")
    room = topic()
    bindings = [{**ITEMS, "filter": "qty=eq.5"}, {"event": "*", "schema": "public", "table": "rt_full"}]
    await ws.send(v1(room, "phx_join", join_payload(bindings), "1", "1"))
    reply = await receive(ws)
    assert set(reply) == {"topic", "event", "payload", "ref"} and reply["ref"] == "1"
    assert reply["payload"]["status"] == "ok"
    echoed = reply["payload"]["response"]["postgres_changes"]
    assert [{k: v for k, v in b.items() if k != "id"} for b in echoed] == bindings
    assert all(isinstance(b["id"], int) for b in echoed)
    assert await receive(ws) == {
        "topic": room, "event": "system", "ref": None,
        "payload": {"channel": room.removeprefix("realtime:"), "extension": "postgres_changes",
                    "message": "Subscribed to PostgreSQL", "status": "ok"},
    }  # fmt: skip
    await ws.send(v1(room, "phx_leave", {}, "2", "1"))
    left = await receive(ws)
    assert (left["event"], left["ref"], left["payload"]["status"]) == ("phx_reply", "2", "ok")
    closed = await receive(ws)
    assert (closed["topic"], closed["event"], closed["payload"]) == (room, "phx_close", {})


async def test_join_errors(stack: Stack, open_socket: Callable[[str], Any]) -> None:
    ws = await open_socket("1.0.0")
    await ws.send(v1("realtime:", "phx_join", join_payload(), "1", "1"))
    assert (await receive(ws))["payload"] == {
        "status": "error", "response": {"reason": "TopicNameRequired: You must provide a topic name"},
    }  # fmt: skip
    expired = stack.user_token(str(uuid.uuid4()), lifetime=-30)
    await ws.send(v1(topic(), "phx_join", {**join_payload(), "access_token": expired}, "2", "2"))
    reply = await receive(ws)
    assert reply["ref"] == "2" and reply["payload"]["status"] == "error"
    assert reply["payload"]["response"]["reason"].startswith("InvalidJWTToken: Token has expired")


def system_error(room: str, message: str) -> dict[str, Any]:
    return {"channel": room.removeprefix("realtime:"), "extension": "system", "message": message, "status": "error"}


async def test_access_token_refresh_reconfirms_the_subscription_and_a_bad_token_ends_the_channel(
    stack: Stack, open_socket: Callable[[str], Any]
) -> None:
    ws = await open_socket("1.0.0")
    user = str(uuid.uuid4())
    rooms = [topic() for _ in range(3)]
    for ref, room in enumerate(rooms):
        await ws.send(v1(room, "phx_join", {**join_payload([ITEMS]), "access_token": stack.user_token(user)}, f"{ref}"))
        assert (await receive(ws))["payload"]["status"] == "ok"
        assert (await receive(ws))["payload"]["message"] == "Subscribed to PostgreSQL"
    refreshed, malformed, expired = rooms

    # No reply: Realtime re-creates the subscription with the new claims and confirms it again.
    await ws.send(v1(refreshed, "access_token", {"access_token": stack.user_token(user, lifetime=7200)}, "10"))
    again = await receive(ws)
    assert (again["topic"], again["event"], again["ref"]) == (refreshed, "system", None)
    assert again["payload"]["message"] == "Subscribed to PostgreSQL" and again["payload"]["status"] == "ok"

    await ws.send(v1(malformed, "access_token", {"access_token": ""}, "11"))
    assert (await receive(ws))["payload"] == system_error(malformed, "The token provided is not a valid JWT")
    assert (await receive(ws))["event"] == "phx_close"

    await ws.send(v1(expired, "access_token", {"access_token": stack.user_token(user, lifetime=-30)}, "12"))
    shutdown = await receive(ws)
    assert shutdown["topic"] == expired and shutdown["payload"]["message"].startswith("Token has expired 3")
    assert shutdown["payload"] == system_error(expired, shutdown["payload"]["message"])
    assert (await receive(ws))["event"] == "phx_close"


async def test_a_channel_ends_when_its_token_expires(stack: Stack, open_socket: Callable[[str], Any]) -> None:
    ws = await open_socket("1.0.0")
    room = topic()
    await ws.send(v1(room, "phx_join", {**join_payload([ITEMS]), "access_token": stack.user_token(lifetime=3)}, "1"))
    assert (await receive(ws))["payload"]["status"] == "ok"
    assert (await receive(ws))["payload"]["message"] == "Subscribed to PostgreSQL"
    shutdown = await receive(ws)  # within WAIT: the token lives at most three more seconds
    assert shutdown["payload"]["message"].startswith("Token has expired")
    assert shutdown["payload"] == system_error(room, shutdown["payload"]["message"])
    closed = await receive(ws)
    assert (closed["topic"], closed["event"]) == (room, "phx_close")


async def test_a_bad_filter_is_reported_by_a_system_error(open_socket: Callable[[str], Any]) -> None:
    ws = await open_socket("1.0.0")
    room = topic()
    await ws.send(v1(room, "phx_join", join_payload([{**ITEMS, "filter": "qty=foo.1"}]), "1", "1"))
    assert (await receive(ws))["payload"]["status"] == "ok"
    system = await receive(ws)
    assert system["event"] == "system" and system["payload"]["status"] == "error"
    assert system["payload"]["message"] == 'Error parsing `filter` params: ["foo", "1"]'


async def test_v2_frames_and_a_binary_broadcast_reaching_v1_and_v2_sockets(open_socket: Callable[[str], Any]) -> None:
    sender, v2_receiver, v1_receiver = (
        await open_socket("2.0.0"),
        await open_socket("2.0.0"),
        await open_socket("1.0.0"),
    )
    room = topic()
    await sender.send(json.dumps([None, "7", "phoenix", "heartbeat", {}]))
    assert await receive(sender) == [None, "7", "phoenix", "phx_reply", {"status": "ok", "response": {}}]
    for ws in (sender, v2_receiver):
        await ws.send(json.dumps(["1", "1", room, "phx_join", join_payload(ack=True)]))
        assert await receive(ws) == [
            "1",
            "1",
            room,
            "phx_reply",
            {"status": "ok", "response": {"postgres_changes": []}},
        ]
    await v1_receiver.send(v1(room, "phx_join", join_payload(), "1", "1"))
    assert (await receive(v1_receiver))["payload"]["status"] == "ok"

    # realtime-js sends channel broadcasts as binary "user broadcast push" frames (kind 3).
    parts = [p.encode() for p in ("1", "2", room, "ping")]
    body = json.dumps({"n": "é"}).encode()
    await sender.send(bytes([3, *map(len, parts), 0, 1]) + b"".join(parts) + body)
    assert await receive(sender) == ["1", "2", room, "phx_reply", {"status": "ok", "response": {}}]  # ack
    assert await receive(v1_receiver) == {
        "topic": room, "event": "broadcast", "ref": None,
        "payload": {"type": "broadcast", "event": "ping", "payload": {"n": "é"}},
    }  # fmt: skip
    assert decode_v2_broadcast(await receive(v2_receiver)) == (
        room,
        {"type": "broadcast", "event": "ping", "payload": {"n": "é"}},
    )


def decode_v2_broadcast(frame: Any) -> tuple[str, dict[str, Any]]:
    """A broadcast as a V2 socket may get it: a JSON array, or a binary "user broadcast" (kind 4)."""
    if isinstance(frame, list):
        assert frame[:2] == [None, None] and frame[3] == "broadcast"
        return frame[2], frame[4]
    assert frame[0] == 4
    topic_size, event_size, meta_size, encoding = frame[1:5]
    pos = 5
    room = frame[pos : pos + topic_size].decode()
    event = frame[pos + topic_size : pos + topic_size + event_size].decode()
    payload = frame[pos + topic_size + event_size + meta_size :]
    return room, {"type": "broadcast", "event": event, "payload": json.loads(payload) if encoding == 1 else payload}


async def test_a_duplicate_join_replaces_the_channel_and_the_close_follows_the_new_answer(
    open_socket: Callable[[str], Any], db: asyncpg.Connection
) -> None:
    """realtime-py re-sends a join whose answer is late: the second join must end up subscribed, and the
    earlier channel's phx_close (if the server sends one) names the old join and comes after the answer."""
    ws = await open_socket("1.0.0")
    room = topic()
    label = f"dup-{uuid.uuid4().hex[:8]}"
    bindings = [{**ITEMS, "filter": f"label=eq.{label}"}]
    await ws.send(v1(room, "phx_join", join_payload(bindings), "1", "1"))
    assert (await receive(ws))["payload"]["status"] == "ok"
    assert (await receive(ws))["event"] == "system"
    await ws.send(v1(room, "phx_join", join_payload(bindings), "2", "2"))
    answer = await receive(ws)
    assert (answer["event"], answer["ref"], answer["payload"]["status"]) == ("phx_reply", "2", "ok")
    after: list[dict[str, Any]] = []
    while not any(f["event"] == "system" for f in after):
        after.append(await receive(ws))
    await db.execute("insert into public.rt_items (label, qty) values ($1, 1)", label)
    while not any(f["event"] == "postgres_changes" for f in after):
        after.append(await receive(ws))
    closes = [f for f in after if f["event"] == "phx_close"]
    assert all(f["ref"] == "1" for f in closes)
    [change] = [f for f in after if f["event"] == "postgres_changes"]
    assert change["payload"]["data"]["record"]["label"] == label
