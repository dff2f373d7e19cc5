"""The process's shared HTTP client keeps httpx's cookie handling while skipping responses that set none."""

from __future__ import annotations

import httpx

from neiromatrius.composition import ProcessClient


async def test_a_cookie_set_by_a_response_is_kept_and_sent_back_and_other_responses_change_nothing() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        if request.url.path == "/login":
            return httpx.Response(200, headers={"Set-Cookie": "session=abc; Path=/"})
        return httpx.Response(200, headers={"Content-Type": "application/json"})

    async with ProcessClient(transport=httpx.MockTransport(handler), cookies={"first": "1"}) as client:
        await client.get("https://api.example.com/plain")
        assert dict(client.cookies) == {"first": "1"}
        await client.get("https://api.example.com/login")
        await client.get("https://api.example.com/after")
        client.cookies = {"replaced": "2"}
        await client.get("https://api.example.com/replaced")

    assert seen == ["first=1", "first=1", "first=1; session=abc", "replaced=2"]
