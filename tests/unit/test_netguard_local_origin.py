"""WEBHOOK_ALLOW_LOCAL: exactly one loopback origin (``neiromatrius run``'s webhook inbox) passes the SSRF guard,
at intake and at delivery; every other loopback URL is still refused."""

from __future__ import annotations

import httpx
import pytest

from neiromatrius.adapters.netguard import GUARD_EXTENSION, GuardedTransport, LocalOrigin, WebhookUrlGuard
from neiromatrius.errors import BlockedDestination, InputError

from .test_netguard import FakeResolver, Recorder

INBOX = "http://127.0.0.1:8001"

STILL_REFUSED = [
    "http://127.0.0.1:8002/hook",  # another port on the same address
    "http://127.0.0.1/hook",  # the default port
    "https://127.0.0.1:8001/hook",  # another scheme
    "http://127.0.0.2:8001/hook",  # another loopback address
    "http://[::1]:8001/hook",
    "http://[::ffff:127.0.0.1]:8001/hook",
    "http://localhost:8001/hook",  # a name: it could resolve anywhere later
    "http://2130706433:8001/hook",  # 127.0.0.1 spelled as a number
    "http://169.254.169.254:8001/latest/meta-data/",
]


def guard(resolver: FakeResolver | None = None) -> WebhookUrlGuard:
    resolver = resolver or FakeResolver({"localhost": ["127.0.0.1"], "2130706433": ["127.0.0.1"]})
    return WebhookUrlGuard(allow_private=False, resolver=resolver, allow_local=LocalOrigin(INBOX))


@pytest.mark.parametrize("url", [f"{INBOX}/", f"{INBOX}/webhook", f"{INBOX}/webhook?from=curl"])
async def test_intake_accepts_the_one_local_origin(url: str) -> None:
    await guard().check(url)


@pytest.mark.parametrize("url", STILL_REFUSED)
async def test_intake_still_refuses_every_other_internal_url(url: str) -> None:
    with pytest.raises(InputError) as caught:
        await guard().check(url)
    assert caught.value.field == "X-Webhook-URL"


def client(recorder: Recorder) -> httpx.AsyncClient:
    resolver = FakeResolver({"localhost": ["127.0.0.1"], "2130706433": ["127.0.0.1"]})
    transport = GuardedTransport(
        httpx.MockTransport(recorder), resolver=resolver, allow_private=False, allow_local=LocalOrigin(INBOX)
    )
    return httpx.AsyncClient(transport=transport)


async def test_delivery_reaches_the_one_local_origin() -> None:
    recorder = Recorder()
    async with client(recorder) as http:
        response = await http.post(f"{INBOX}/webhook", content=b"{}", extensions={GUARD_EXTENSION: True})
    assert response.status_code == 204
    assert [str(request.url) for request in recorder.requests] == [f"{INBOX}/webhook"]


@pytest.mark.parametrize("url", [url for url in STILL_REFUSED if not url.startswith("https")])
async def test_delivery_still_blocks_every_other_internal_url(url: str) -> None:
    recorder = Recorder()
    async with client(recorder) as http:
        with pytest.raises(BlockedDestination):
            await http.post(url, extensions={GUARD_EXTENSION: True})
    assert recorder.requests == []


@pytest.mark.parametrize(
    "origin", ["http://10.0.0.1:8001", "http://localhost:8001", "https://127.0.0.1:8001", "http://127.0.0.1"]
)
def test_only_a_loopback_literal_with_a_port_can_be_allowed(origin: str) -> None:
    with pytest.raises(ValueError, match="WEBHOOK_ALLOW_LOCAL"):
        LocalOrigin(origin)
