"""Webhook delivery over real HTTP on 127.0.0.1: what the receiver gets, its signature, the outcome,
and that guarded delivery never opens a connection to an internal address."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import trustme
from pydantic import SecretStr
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from neiromatrius.adapters.http_transport import StreamingAiohttpTransport
from neiromatrius.adapters.netguard import (
    GuardedTransport,
    SystemResolver,
    WebhookUrlGuard,
)
from neiromatrius.adapters.webhooks import DRAIN_BYTES as WEBHOOK_DRAIN_BYTES
from neiromatrius.adapters.webhooks import USER_AGENT, WebhookDeliverer, webhook_secret
from neiromatrius.config import Settings
from neiromatrius.core.models import Classification, DeliveryJob, DeliveryOutcome
from neiromatrius.core.ports import Resolver
from tests.conftest import MakeReceiver
from tests.support.fakes import FakeResolver
from tests.support.http_receiver import Reply

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
CREATED = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
CLASSIFICATION = Classification(
    category="order_status",
    intent="where is my order",
    sentiment="neutral",
    urgency="normal",
    language="ru",
    confidence=0.91,
    needs_human=False,
)


MakeDeliverer = Callable[..., WebhookDeliverer]


@pytest.fixture(params=["httpx", "aiohttp"])
async def deliverer(request: pytest.FixtureRequest) -> AsyncIterator[MakeDeliverer]:
    """Deliverers over either pool HTTP_TRANSPORT can choose."""
    clients: list[httpx.AsyncClient] = []

    def make(
        *,
        allow_private: bool = True,
        resolver: Resolver | None = None,
        timeout: float = 5.0,
        clock: Callable[[], datetime] | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> WebhookDeliverer:
        pool: httpx.AsyncBaseTransport = (
            StreamingAiohttpTransport(verify=verify)
            if request.param == "aiohttp"
            else httpx.AsyncHTTPTransport(verify=verify)
        )
        transport = GuardedTransport(
            pool,
            resolver=resolver or SystemResolver(),
            allow_private=allow_private,
        )
        client = httpx.AsyncClient(transport=transport)
        clients.append(client)
        if clock is None:
            return WebhookDeliverer(client, SECRET, timeout)
        return WebhookDeliverer(client, SECRET, timeout, clock=clock)

    yield make
    for client in clients:
        await client.aclose()


def job(url: str | None, attempt: int = 1) -> DeliveryJob:
    return DeliveryJob(
        reply_id="5d0c9a4e-reply",
        message_id="b1e2-message",
        conversation_id="c3d4-conversation",
        client_id="client-42",
        platform="web",
        chat_id="chat-7",
        webhook_url=url,
        content="Ваш заказ уже в пути — «доставка» завтра.",
        classification=CLASSIFICATION,
        attempt=attempt,
        created_at=CREATED,
    )


class SteppingClock:
    """Real time plus a step per reading, so attempts a test makes back to back get distinct timestamps."""

    def __init__(self, step: timedelta) -> None:
        self.start = datetime.now(UTC)
        self.step = step
        self.readings = 0

    def __call__(self) -> datetime:
        now = self.start + self.step * self.readings
        self.readings += 1
        return now


# What the receiver gets


async def test_the_receiver_gets_a_signed_standard_webhook(receiver: MakeReceiver, deliverer: MakeDeliverer) -> None:
    server = await receiver(Reply(200))

    result = await deliverer().deliver(job(server.url("/hooks/replies?tenant=42")))

    assert result.outcome is DeliveryOutcome.DELIVERED
    assert result.status_code == 200
    assert result.error is None
    assert result.webhook_id == "5d0c9a4e-reply"
    assert result.url == server.url("/hooks/replies?tenant=42")
    assert result.duration_ms >= 0
    [request] = server.requests
    assert request.method == "POST"
    assert request.target == "/hooks/replies?tenant=42"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers["webhook-id"] == "5d0c9a4e-reply"
    assert request.headers["webhook-signature"].startswith("v1,")
    assert Webhook(SECRET).verify(request.body, request.headers) == {
        "type": "message.replied",
        "timestamp": "2025-03-01T12:00:00.250000Z",
        "data": {
            "message_id": "b1e2-message",
            "reply_id": "5d0c9a4e-reply",
            "conversation_id": "c3d4-conversation",
            "client_id": "client-42",
            "platform": "web",
            "chat_id": "chat-7",
            "response": "Ваш заказ уже в пути — «доставка» завтра.",
            "classification": CLASSIFICATION.model_dump(mode="json"),
        },
    }
    compact = json.dumps(json.loads(request.body), ensure_ascii=False, separators=(",", ":")).encode()
    assert request.body == compact


async def test_a_short_answer_is_read_whole_so_the_connection_carries_the_next_webhook(
    receiver: MakeReceiver, deliverer: MakeDeliverer
) -> None:
    server = await receiver(Reply(200, body=b'{"received": true}'), keep_alive=True)
    send = deliverer()

    results = [await send.deliver(job(server.url())) for _ in range(3)]

    assert [result.outcome for result in results] == [DeliveryOutcome.DELIVERED] * 3
    assert len(server.requests) == 3
    assert server.connections == 1


async def test_a_long_answer_is_cut_off_and_the_status_decides(
    receiver: MakeReceiver, deliverer: MakeDeliverer
) -> None:
    server = await receiver(Reply(200, body=b"x" * (WEBHOOK_DRAIN_BYTES * 4)), keep_alive=True)
    send = deliverer()

    results = [await send.deliver(job(server.url())) for _ in range(2)]

    assert [result.outcome for result in results] == [DeliveryOutcome.DELIVERED] * 2
    assert server.connections == 2  # the unread rest of the answer made the first connection unusable


async def test_an_answer_whose_body_never_comes_is_judged_by_its_status(
    receiver: MakeReceiver, deliverer: MakeDeliverer
) -> None:
    server = await receiver(Reply(200, hold_body=True), Reply(503, hold_body=True))
    send = deliverer(timeout=30.0)

    delivered = await asyncio.wait_for(send.deliver(job(server.url())), 20)
    refused = await asyncio.wait_for(send.deliver(job(server.url())), 20)

    assert delivered.outcome is DeliveryOutcome.DELIVERED
    assert delivered.status_code == 200
    assert refused.outcome is DeliveryOutcome.RETRY
    assert refused.status_code == 503
    assert server.connections == 2


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def tls_for(authority: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(*names).configure_cert(context)
    return context


def trusting(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context


async def test_https_is_pinned_to_the_address_and_checks_the_certificate_against_the_name(
    receiver: MakeReceiver, deliverer: MakeDeliverer, authority: trustme.CA
) -> None:
    server = await receiver(Reply(200), tls=tls_for(authority, "hooks.example.com"))
    resolver = FakeResolver({"hooks.example.com": [["127.0.0.1"]]})
    send = deliverer(resolver=resolver, verify=trusting(authority))

    result = await send.deliver(job(server.url(host="hooks.example.com")))

    assert result.outcome is DeliveryOutcome.DELIVERED
    [request] = server.requests
    assert request.headers["host"] == f"hooks.example.com:{server.port}"
    assert resolver.hosts == ["hooks.example.com"]


async def test_https_to_a_certificate_for_another_name_is_never_sent(
    receiver: MakeReceiver, deliverer: MakeDeliverer, authority: trustme.CA
) -> None:
    # Valid, and for the address the request is pinned to, but not for the name the webhook URL holds.
    server = await receiver(Reply(200), tls=tls_for(authority, "elsewhere.example.org", "127.0.0.1"))
    resolver = FakeResolver({"hooks.example.com": [["127.0.0.1"]]})
    send = deliverer(resolver=resolver, verify=trusting(authority))

    result = await send.deliver(job(server.url(host="hooks.example.com")))

    assert result.outcome is DeliveryOutcome.RETRY
    assert result.error is not None and result.error.startswith("connection failed: ConnectError")
    assert server.requests == []


async def test_the_shared_clients_keys_and_cookies_never_reach_the_receiver(receiver: MakeReceiver) -> None:
    server = await receiver(Reply(200))
    transport = GuardedTransport(resolver=SystemResolver(), allow_private=True)
    shared = httpx.AsyncClient(
        transport=transport,
        headers={"apikey": "service-role-key", "Authorization": "Bearer service-role-key"},
        cookies={"session": "s3cret"},
        auth=("supabase", "password"),
    )

    async with shared:
        result = await WebhookDeliverer(shared, SECRET, 5.0).deliver(job(server.url()))

    assert result.outcome is DeliveryOutcome.DELIVERED
    [request] = server.requests
    assert set(request.headers) == {
        "host",
        "content-length",
        "content-type",
        "user-agent",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
    Webhook(SECRET).verify(request.body, request.headers)


async def test_a_reply_without_classification_sends_null(receiver: MakeReceiver, deliverer: MakeDeliverer) -> None:
    server = await receiver(Reply(204))

    result = await deliverer().deliver(job(server.url()).model_copy(update={"classification": None}))

    assert result.outcome is DeliveryOutcome.DELIVERED
    assert json.loads(server.requests[0].body)["data"]["classification"] is None


async def test_one_changed_body_byte_fails_verification(receiver: MakeReceiver, deliverer: MakeDeliverer) -> None:
    server = await receiver(Reply(200))
    await deliverer().deliver(job(server.url()))
    [request] = server.requests

    tampered = bytearray(request.body)
    position = request.body.index(b"client-42") + len("client-4")
    tampered[position] = ord("3")

    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(bytes(tampered), request.headers)


async def test_a_timestamp_shifted_by_301_seconds_fails_verification(
    receiver: MakeReceiver, deliverer: MakeDeliverer
) -> None:
    server = await receiver(Reply(200))
    await deliverer().deliver(job(server.url()))
    [request] = server.requests
    shifted = {**request.headers, "webhook-timestamp": str(int(request.headers["webhook-timestamp"]) - 301)}

    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(request.body, shifted)


async def test_a_request_signed_301_seconds_ago_is_refused_as_too_old(
    receiver: MakeReceiver, deliverer: MakeDeliverer
) -> None:
    server = await receiver(Reply(200))
    late = datetime.now(UTC) - timedelta(seconds=301)
    await deliverer(clock=lambda: late).deliver(job(server.url()))
    [request] = server.requests

    assert request.headers["webhook-timestamp"] == str(int(late.timestamp()))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(request.body, request.headers)


async def test_a_retry_keeps_the_webhook_id_and_signs_a_fresh_timestamp(
    receiver: MakeReceiver, deliverer: MakeDeliverer
) -> None:
    server = await receiver(Reply(500), Reply(200))
    sender = deliverer(clock=SteppingClock(timedelta(seconds=60)))

    first = await sender.deliver(job(server.url(), attempt=1))
    second = await sender.deliver(job(server.url(), attempt=2))

    assert (first.outcome, first.status_code, first.error) == (DeliveryOutcome.RETRY, 500, "HTTP 500")
    assert (second.outcome, second.status_code) == (DeliveryOutcome.DELIVERED, 200)
    one, two = server.requests
    assert one.headers["webhook-id"] == two.headers["webhook-id"] == "5d0c9a4e-reply"
    assert int(two.headers["webhook-timestamp"]) > int(one.headers["webhook-timestamp"])
    assert one.body == two.body
    for request in (one, two):
        Webhook(SECRET).verify(request.body, request.headers)


# How the receiver's answer is judged


async def test_gone_stops_delivery(receiver: MakeReceiver, deliverer: MakeDeliverer) -> None:
    server = await receiver(Reply(410))

    result = await deliverer().deliver(job(server.url()))

    assert (result.outcome, result.status_code) == (DeliveryOutcome.STOPPED, 410)


async def test_the_receiver_can_abort_retries(receiver: MakeReceiver, deliverer: MakeDeliverer) -> None:
    server = await receiver(Reply(400, (("Webhook-Delivery", "abort-message"),)))

    result = await deliverer().deliver(job(server.url()))

    assert (result.outcome, result.status_code) == (DeliveryOutcome.STOPPED, 400)
    assert result.error is not None and "abort-message" in result.error


async def test_a_redirect_is_a_failure_and_is_never_followed(receiver: MakeReceiver, deliverer: MakeDeliverer) -> None:
    canary = await receiver(Reply(200))
    server = await receiver(Reply(302, (("Location", canary.url("/stolen")),)))

    result = await deliverer().deliver(job(server.url()))

    assert (result.outcome, result.status_code) == (DeliveryOutcome.RETRY, 302)
    assert result.error is not None and "redirect" in result.error
    assert len(server.requests) == 1
    assert canary.connections == 0
    assert canary.requests == []


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 400, 404])
async def test_other_statuses_are_retried(status: int, receiver: MakeReceiver, deliverer: MakeDeliverer) -> None:
    server = await receiver(Reply(status))

    result = await deliverer().deliver(job(server.url()))

    assert (result.outcome, result.status_code, result.error) == (DeliveryOutcome.RETRY, status, f"HTTP {status}")
    assert result.retry_after is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), ("0", 0.0), ("HTTP-DATE+90", 90.0), ("HTTP-DATE-30", 0.0), ("soon", None), ("-5", None)],
)
async def test_retry_after_is_parsed(
    value: str, expected: float | None, receiver: MakeReceiver, deliverer: MakeDeliverer
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    if value.startswith("HTTP-DATE"):
        value = format_datetime(now + timedelta(seconds=int(value.removeprefix("HTTP-DATE"))), usegmt=True)
    server = await receiver(Reply(503, (("Retry-After", value),)))

    result = await deliverer(clock=lambda: now).deliver(job(server.url()))

    assert result.outcome is DeliveryOutcome.RETRY
    assert result.retry_after == expected


async def test_a_receiver_that_never_answers_times_out_and_is_retried(
    receiver: MakeReceiver, deliverer: MakeDeliverer
) -> None:
    server = await receiver(Reply(hang=True))

    result = await deliverer(timeout=0.3).deliver(job(server.url()))

    assert result.outcome is DeliveryOutcome.RETRY
    assert result.status_code is None
    assert result.error is not None and result.error.startswith("timeout")
    assert len(server.requests) == 1  # it did arrive; the answer never came


async def test_a_refused_connection_is_retried(deliverer: MakeDeliverer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    result = await deliverer().deliver(job(f"http://127.0.0.1:{closed_port}/hook"))

    assert result.outcome is DeliveryOutcome.RETRY
    assert result.error is not None and result.error.startswith("connection failed: ConnectError")


async def test_no_webhook_url_fails_without_sending(deliverer: MakeDeliverer) -> None:
    result = await deliverer().deliver(job(None))

    assert (result.outcome, result.error, result.url) == (DeliveryOutcome.FAILED, "no webhook URL", None)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/hook", "http://[::1/hook"])
async def test_a_url_that_cannot_be_sent_to_fails_for_good(url: str, deliverer: MakeDeliverer) -> None:
    result = await deliverer().deliver(job(url))

    assert result.outcome is DeliveryOutcome.FAILED
    assert result.error is not None and result.error.startswith("invalid webhook URL")


# The guard: pinning, and no connection to an internal address


async def test_delivery_is_pinned_to_the_resolved_address_and_keeps_the_host(
    receiver: MakeReceiver, deliverer: MakeDeliverer
) -> None:
    server = await receiver(Reply(200))
    resolver = FakeResolver({"receiver.test": [["127.0.0.1"]]})

    result = await deliverer(allow_private=True, resolver=resolver).deliver(
        job(server.url("/in", host="receiver.test"))
    )

    assert result.outcome is DeliveryOutcome.DELIVERED
    assert result.url == f"http://receiver.test:{server.port}/in"
    assert server.requests[0].headers["host"] == f"receiver.test:{server.port}"
    assert resolver.hosts == ["receiver.test"]
    Webhook(SECRET).verify(server.requests[0].body, server.requests[0].headers)


@pytest.mark.parametrize("answer", ["127.0.0.1", "169.254.169.254"])
async def test_a_name_resolving_inside_is_blocked_without_connecting(
    answer: str, receiver: MakeReceiver, deliverer: MakeDeliverer
) -> None:
    canary = await receiver(Reply(200))
    resolver = FakeResolver({"hooks.example.com": [[answer]]})

    result = await deliverer(allow_private=False, resolver=resolver).deliver(job(canary.url(host="hooks.example.com")))

    assert result.outcome is DeliveryOutcome.FAILED
    assert result.error is not None and result.error.startswith("blocked_destination:")
    assert result.status_code is None
    assert canary.connections == 0


async def test_a_loopback_literal_is_blocked_without_connecting(
    receiver: MakeReceiver, deliverer: MakeDeliverer
) -> None:
    canary = await receiver(Reply(200))

    result = await deliverer(allow_private=False).deliver(job(canary.url()))

    assert result.outcome is DeliveryOutcome.FAILED
    assert result.error is not None and result.error.startswith("blocked_destination:")
    assert canary.connections == 0


async def test_dns_rebinding_after_intake_is_blocked_without_connecting(
    receiver: MakeReceiver, deliverer: MakeDeliverer
) -> None:
    canary = await receiver(Reply(200))
    resolver = FakeResolver({"rebind.example.com": [["93.184.215.14"], ["127.0.0.1"]]})
    url = canary.url(host="rebind.example.com")

    await WebhookUrlGuard(allow_private=False, resolver=resolver).check(url)  # looked public at intake
    result = await deliverer(allow_private=False, resolver=resolver).deliver(job(url))

    assert result.outcome is DeliveryOutcome.FAILED
    assert result.error is not None and result.error.startswith("blocked_destination:")
    assert resolver.hosts == ["rebind.example.com", "rebind.example.com"]
    assert canary.connections == 0


async def test_unguarded_traffic_on_the_same_client_is_not_checked(receiver: MakeReceiver) -> None:
    server = await receiver(Reply(200))
    transport = GuardedTransport(resolver=FakeResolver({}), allow_private=False)

    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(server.url("/rest/v1/messages"))

    assert response.status_code == 200
    assert server.requests[0].target == "/rest/v1/messages"


# The signing secret


def settings(secret_key: str = "s" * 40, signing_secret: str | None = None) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        supabase_url="http://127.0.0.1:54321",
        supabase_service_role_key=SecretStr("service-role"),
        secret_key=SecretStr(secret_key),
        webhook_secret=None if signing_secret is None else SecretStr(signing_secret),
    )


def test_the_configured_webhook_secret_is_used() -> None:
    configured = settings(signing_secret=SECRET)

    assert webhook_secret(configured) == SECRET


def test_without_one_a_stable_secret_is_derived_from_secret_key() -> None:
    derived = webhook_secret(settings())

    assert derived.startswith("whsec_")
    assert len(base64.b64decode(derived.removeprefix("whsec_"))) == 32
    assert derived == webhook_secret(settings())
    assert derived != webhook_secret(settings(secret_key="t" * 40))
    Webhook(derived)  # the library accepts it
