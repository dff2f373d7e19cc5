"""The process's aiohttp transport, through httpx, against a real server on 127.0.0.1."""

from __future__ import annotations

import gzip
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from neiromatrius.adapters.http_transport import ReadingAiohttpTransport

Seen = list[tuple[str, str, dict[str, str], bytes]]


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Seen]]:
    seen: Seen = []

    async def handle(request: web.Request) -> web.StreamResponse:
        headers = {name.lower(): value for name, value in request.headers.items()}
        seen.append((request.method, request.raw_path, headers, await request.read()))
        if request.path == "/gzip":
            body = gzip.compress(b'{"zipped": true}')
            return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
        response = web.Response(status=201, body=b'{"ok": true}', content_type="application/json")
        response.headers.add("Set-Cookie", "a=1")
        response.headers.add("Set-Cookie", "b=2")
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_a_request_arrives_as_httpx_built_it_and_the_answer_comes_back_whole(
    server: tuple[str, Seen],
) -> None:
    base, seen = server
    async with httpx.AsyncClient(transport=ReadingAiohttpTransport()) as client:
        response = await client.post(
            f"{base}/rest/v1/rpc/intake?select=*&name=eq.caf%C3%A9",
            content=b'{"p": 1}',
            headers={"Authorization": "Bearer key", "X-Two": "2"},
        )
        zipped = await client.get(f"{base}/gzip")

    assert response.status_code == 201
    assert response.json() == {"ok": True}
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.reason_phrase == "Created"
    assert zipped.json() == {"zipped": True}
    method, target, headers, body = seen[0]
    assert (method, target, body) == ("POST", "/rest/v1/rpc/intake?select=*&name=eq.caf%C3%A9", b'{"p": 1}')
    assert headers["authorization"] == "Bearer key"
    assert headers["x-two"] == "2"
    assert headers["content-length"] == "8"


async def test_a_streamed_request_body_is_sent_whole(server: tuple[str, Seen]) -> None:
    base, seen = server

    async def chunks() -> AsyncIterator[bytes]:
        yield b"first,"
        yield b"second"

    async with httpx.AsyncClient(transport=ReadingAiohttpTransport()) as client:
        response = await client.post(f"{base}/stream", content=chunks())

    assert response.status_code == 201
    assert seen[0][3] == b"first,second"


async def test_a_refused_connection_is_an_httpx_transport_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: the connection is refused
        async with httpx.AsyncClient(transport=ReadingAiohttpTransport()) as client:
            with pytest.raises(httpx.TransportError):  # what the store reads as "Supabase unreachable"
                await client.get(f"http://127.0.0.1:{port}/")
