"""The shared table of hostile requests (supabase/functions/messages/testdata/hostile.json) against the API.

The Edge Function's ``deno test`` sends the same requests to the function (hostile_test.ts); each row says what
the API answers, and where the edge runtime forces the function to differ, what it answers instead and why.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from neiromatrius.adapters.netguard import WebhookUrlGuard
from neiromatrius.api import ApiServices
from neiromatrius.errors import ResolutionFailed
from tests.support.fakes import FakeCache, FakeMessageIntake, FakeRateLimiter, FakeReplyWaiter

from .harness import make_client, make_settings

TABLE_PATH = Path(__file__).resolve().parents[3] / "supabase/functions/messages/testdata/hostile.json"
TABLE: dict[str, Any] = json.loads(TABLE_PATH.read_text(encoding="utf-8"))


class Offline:
    """The system resolver without DNS: numeric hosts (``2130706433``, ``0x7f.1``) read as the OS reads them,
    no name resolves (as the function's test has it)."""

    async def resolve(self, host: str, port: int) -> list[str]:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        except socket.gaierror:
            raise ResolutionFailed(f"{host} does not resolve") from None
        return [str(info[4][0]) for info in infos]


def build(case: dict[str, Any]) -> tuple[list[tuple[str, str]], bytes]:
    """The case's headers (in order, repeats kept) and body bytes, as hostile_test.ts builds them."""
    headers = [(name, value) for name, value in TABLE["base"]["headers"]]
    for name, value in case.get("set", []):
        headers = [h for h in headers if h[0].lower() != name.lower()] + [(name, value)]
    for name in case.get("remove", []):
        headers = [h for h in headers if h[0].lower() != name.lower()]
    headers += [(name, value) for name, value in case.get("add", [])]
    if pad := case.get("pad"):
        headers += [(f"X-Pad-{i}", "a" * pad["bytes"]) for i in range(pad["fields"])]
    if "body_base64" in case:
        body = base64.b64decode(case["body_base64"])
    elif "nested" in case:
        body = ("[" * case["nested"] + "]" * case["nested"]).encode()
    elif "content_chars" in case:
        body = json.dumps({"client_id": "hostile_client", "content": "x" * case["content_chars"]}).encode()
    else:
        body = case.get("body", TABLE["base"]["body"]).encode("utf-8")
    return headers, body


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    services = ApiServices(
        store=FakeMessageIntake(),
        waiter=FakeReplyWaiter(),
        url_guard=WebhookUrlGuard(allow_private=False, resolver=Offline()),
        limiter=FakeRateLimiter(),
        cache_status=FakeCache("ok"),
        startup_timeout=1.0,
    )
    app, http = make_client(make_settings(), services)
    async with app.router.lifespan_context(app), http:
        yield http


@pytest.mark.parametrize("case", TABLE["cases"], ids=[case["name"] for case in TABLE["cases"]])
async def test_the_api_answers_each_hostile_request_as_the_table_says(
    client: httpx.AsyncClient, case: dict[str, Any]
) -> None:
    headers, body = build(case)
    response = await client.post("/api/messages/", headers=headers, content=body)
    expected = case["api"]
    assert response.status_code == expected["status"], response.text
    if "code" in expected:
        error = response.json()["error"]
        assert (error["code"], error.get("field")) == (expected["code"], expected["field"]), error


def test_every_difference_at_the_edge_is_forced_by_the_runtime_and_says_why() -> None:
    """Two things happen before the function runs: repeated fields are joined into one, and a request with more
    than 128 fields is refused by the runtime's HTTP server. Anything else must agree."""
    differences = [case for case in TABLE["cases"] if "edge" in case]
    assert differences, "the table documents the runtime's differences"
    for case in differences:
        why = case["edge"]["why"]
        if "joined" in why:
            assert case["add"] and case["name"].endswith("sent twice"), case["name"]
        else:
            assert "more than 128 header fields" in why and case["pad"]["fields"] > 128, case["name"]
            assert case["edge"]["status"] >= 400 and case["api"]["status"] >= 400, "refused either way"
