"""SSRF: a webhook URL that points inside is refused at intake and blocked at delivery, and nothing ever
connects to it. A canary listens on every local address at one port; each URL here points at that port.

At intake the literal forms go through the real API process (its resolver is the system's). The API
cannot be handed a resolver, so names only a test resolver knows, DNS rebinding and redirects are driven
in this process through the same guard and the same pinned transport the listener uses, over real sockets.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from neiromatrius.adapters.netguard import (
    GUARD_EXTENSION,
    GuardedTransport,
    SystemResolver,
    WebhookUrlGuard,
)
from neiromatrius.adapters.webhooks import WebhookDeliverer
from neiromatrius.core.models import DeliveryJob, DeliveryOutcome
from neiromatrius.errors import BlockedDestination, InputError
from tests.conftest import Stack
from tests.reliability.abuse_support import Canary, api_process, local_addresses, table_counts
from tests.support.fakes import FakeResolver
from tests.support.http_receiver import Receiver, Reply

FIELD = "X-Webhook-URL"
PUBLIC = "93.184.215.14"
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(scope="module")
def ssrf_api(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with api_process(stack, tmp_path_factory.mktemp("ssrf-api"), ALLOW_PRIVATE_WEBHOOKS="false") as url:
        yield url


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    server = Canary()
    await server.start()
    yield server
    await server.close()


def inside_urls(port: int) -> list[str]:
    """Forms that test_faults' intake test does not already send, each aimed at the canary's port."""
    hosts = [
        "127.0.0.2",  # the rest of 127/8
        "127.1",  # short form
        "0x7f000001",  # hex dword
        "017700000001",  # octal dword
        "0x7f.0x0.0x0.0x1",  # hex per octet
        "0.0.0.0",  # Linux connects this to the local host
        "0",
        "LOCALHOST",  # /etc/hosts, another spelling
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.1.1",
        "169.254.0.1",  # link-local
        "100.64.0.1",  # CGNAT
        "[fd00:ec2::254]",  # AWS metadata over IPv6
        "[fe80::1]",
        "[::ffff:7f00:1]",  # IPv4-mapped, hex spelling
        "[::127.0.0.1]",  # IPv4-compatible
        "[::ffff:169.254.169.254]",
        "[2002:7f00:1::1]",  # 6to4 wrapping 127.0.0.1
        "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",  # Teredo
        "[64:ff9b::7f00:1]",  # NAT64 of 127.0.0.1
        "[::]",
    ]
    hosts += [f"[{address}]" if ":" in address else address for address in local_addresses()]
    return [f"http://{host}:{port}/hook" for host in hosts]


async def test_inside_urls_are_422_at_intake_with_nothing_written_and_no_connection(
    ssrf_api: str, canary: Canary, db: asyncpg.Connection
) -> None:
    urls = inside_urls(canary.port)
    before = await table_counts(db)
    outcomes = []
    async with httpx.AsyncClient(timeout=10) as http:
        for url in urls:
            headers = {FIELD: url, "X-Platform": "abuse", "X-Chat-ID": "ssrf", "Prefer": "respond-async"}
            body = {"client_id": f"abuse-ssrf-{uuid.uuid4().hex[:8]}", "content": "hi"}
            response = await http.post(f"{ssrf_api}/api/messages/", headers=headers, json=body)
            error = response.json().get("error", {})
            outcomes.append((url, response.status_code, error.get("field"), error.get("code")))

    assert outcomes == [(url, 422, FIELD, "invalid_request") for url in urls]
    assert await table_counts(db) == before
    assert canary.connections == []


class PublicInternet(httpx.AsyncBaseTransport):
    """The internet as seen from the test: the pinned public address is served by a loopback receiver.

    Only this mapping reaches loopback; every other address is dialled for real (and counted).
    """

    def __init__(self, receiver_port: int) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.receiver_port = receiver_port
        self.dialled: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.dialled.append(str(request.url))
        if request.url.host == PUBLIC:
            request.url = request.url.copy_with(host="127.0.0.1", port=self.receiver_port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def job(url: str) -> DeliveryJob:
    return DeliveryJob(
        reply_id=str(uuid.uuid4()),
        message_id=str(uuid.uuid4()),
        conversation_id=str(uuid.uuid4()),
        client_id="abuse-ssrf",
        platform="abuse",
        chat_id="ssrf",
        webhook_url=url,
        content="reply",
        classification=None,
        attempt=1,
        created_at=datetime.now(UTC),
    )


@pytest.mark.parametrize("answer", ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"])
async def test_a_name_resolving_to_loopback_is_refused_at_intake_and_blocked_at_delivery(
    answer: str, canary: Canary
) -> None:
    url = f"http://only-the-test-knows.abuse.test:{canary.port}/hook"
    resolver = FakeResolver({"only-the-test-knows.abuse.test": [[answer]]})

    with pytest.raises(InputError) as refused:
        await WebhookUrlGuard(allow_private=False, resolver=resolver).check(url)
    internet = PublicInternet(receiver_port=0)
    async with httpx.AsyncClient(transport=GuardedTransport(internet, resolver=resolver, allow_private=False)) as http:
        attempt = await WebhookDeliverer(http, SECRET, timeout=2.0).deliver(job(url))

    assert refused.value.field == FIELD
    assert attempt.outcome is DeliveryOutcome.FAILED
    assert attempt.error is not None and attempt.error.startswith("blocked_destination")
    assert internet.dialled == []
    assert canary.connections == []


async def test_localhost_from_etc_hosts_is_refused_by_the_system_resolver(canary: Canary) -> None:
    url = f"http://localhost:{canary.port}/hook"
    with pytest.raises(InputError) as refused:
        await WebhookUrlGuard(allow_private=False, resolver=SystemResolver()).check(url)
    async with httpx.AsyncClient(transport=GuardedTransport(resolver=SystemResolver(), allow_private=False)) as http:
        attempt = await WebhookDeliverer(http, SECRET, timeout=2.0).deliver(job(url))

    assert refused.value.field == FIELD
    assert attempt.outcome is DeliveryOutcome.FAILED
    assert attempt.error is not None and "resolves to 127.0.0.1" in attempt.error
    assert canary.connections == []


async def test_dns_rebinding_between_intake_and_delivery_is_blocked_and_never_connects(canary: Canary) -> None:
    # Public when intake looks, loopback when delivery looks: delivery resolves again, checks, and refuses.
    url = f"http://rebinding.abuse.test:{canary.port}/hook"
    resolver = FakeResolver({"rebinding.abuse.test": [[PUBLIC], ["127.0.0.1"]]})
    internet = PublicInternet(receiver_port=0)

    await WebhookUrlGuard(allow_private=False, resolver=resolver).check(url)
    async with httpx.AsyncClient(transport=GuardedTransport(internet, resolver=resolver, allow_private=False)) as http:
        attempt = await WebhookDeliverer(http, SECRET, timeout=2.0).deliver(job(url))

    assert resolver.hosts == ["rebinding.abuse.test", "rebinding.abuse.test"]
    assert attempt.outcome is DeliveryOutcome.FAILED
    reason = "rebinding.abuse.test resolves to 127.0.0.1, which is not a public address"
    assert attempt.error == f"blocked_destination: {reason}"
    assert internet.dialled == []
    assert canary.connections == []


@pytest.fixture
async def redirecting(canary: Canary) -> AsyncIterator[Receiver]:
    """A receiver at a public-looking name that answers 302 to the canary on loopback."""
    server = Receiver([Reply(302, headers=(("Location", f"http://127.0.0.1:{canary.port}/stolen"),))])
    await server.start()
    yield server
    await server.close()


async def test_a_redirect_to_loopback_from_a_public_receiver_is_never_followed(
    redirecting: Receiver, canary: Canary
) -> None:
    url = f"http://hooks.public.test:{redirecting.port}/hook"
    resolver = FakeResolver({"hooks.public.test": [[PUBLIC]]})
    internet = PublicInternet(redirecting.port)
    transport = GuardedTransport(internet, resolver=resolver, allow_private=False)

    await WebhookUrlGuard(allow_private=False, resolver=resolver).check(url)
    async with httpx.AsyncClient(transport=transport, follow_redirects=False) as http:
        attempt = await WebhookDeliverer(http, SECRET, timeout=2.0).deliver(job(url))
    # Defence in depth: even a client told to follow redirects has each hop checked by the guard.
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as follower:
        with pytest.raises(BlockedDestination):
            await follower.post(url, content=b"{}", extensions={GUARD_EXTENSION: True})

    assert (attempt.outcome, attempt.status_code) == (DeliveryOutcome.RETRY, 302)
    assert attempt.error == "HTTP 302: redirects are not followed"
    assert [r.target for r in redirecting.requests] == ["/hook", "/hook"]
    assert internet.dialled == [f"http://{PUBLIC}:{redirecting.port}/hook"] * 2
    assert canary.connections == []


async def test_the_canary_counts_what_reaches_it(canary: Canary) -> None:
    # The control: the canary does see connections, on each loopback form the tests aim at.
    async with httpx.AsyncClient(timeout=2) as http:
        for host in ("127.0.0.1", "127.0.0.2", "[::1]", "0.0.0.0"):
            with pytest.raises(httpx.HTTPError):
                await http.get(f"http://{host}:{canary.port}/")

    assert len(canary.connections) == 4
