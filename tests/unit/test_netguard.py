"""The SSRF guard: which addresses count as public, what intake accepts, and how delivery pins."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from neiromatrius.adapters.netguard import (
    GUARD_EXTENSION,
    GuardedTransport,
    SystemResolver,
    WebhookUrlGuard,
    is_public_address,
)
from neiromatrius.errors import BlockedDestination, InputError, ResolutionFailed
from tests.support.fakes import FakeResolver

FIELD = "X-Webhook-URL"


# One address from inside every range of the deny list (first, a middle and last addresses where useful).
DENIED = [
    "0.0.0.0",
    "0.255.255.255",
    "10.0.0.1",
    "10.255.255.255",
    "100.64.0.1",
    "100.100.100.200",  # Alibaba metadata, inside CGNAT
    "100.127.255.254",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.0.1",
    "169.254.169.254",  # cloud metadata
    "172.16.0.1",
    "172.31.255.254",
    "192.0.0.8",
    "192.0.2.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.19.255.254",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "::7f00:1",  # IPv4-compatible 127.0.0.1
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8: still refused, NAT64 can reach inside
    "fc00::1",
    "fd12:3456:789a::1",
    "fe80::1",
    "fec0::1",
    "ff02::1",
    "ff0e::1",
    "2001:db8::1",
    "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
    "2002:c0a8:101::1",  # 6to4 wrapping 192.168.1.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]

PUBLIC = [
    "93.184.215.14",
    "8.8.8.8",
    "1.1.1.1",
    "2606:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:93.184.215.14",  # IPv4-mapped public address: judged as the IPv4 address
    "2002:5db8:d70e::1",  # 6to4 wrapping 93.184.215.14
]


@pytest.mark.parametrize("address", DENIED)
def test_denied_addresses_are_not_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is True


@pytest.mark.parametrize("address", DENIED)
async def test_intake_refuses_urls_to_denied_literals(address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    guard = WebhookUrlGuard(allow_private=False, resolver=FakeResolver())

    with pytest.raises(InputError) as caught:
        await guard.check(f"https://{host}/hook")

    assert caught.value.field == FIELD
    assert "private, loopback, link-local or metadata" in caught.value.message


@pytest.mark.parametrize("answer", ["127.0.0.1", "169.254.169.254", "100.100.100.200", "::1", "::ffff:10.0.0.1"])
async def test_intake_refuses_names_that_resolve_inside(answer: str) -> None:
    resolver = FakeResolver({"hooks.example.com": [[answer]]})
    guard = WebhookUrlGuard(allow_private=False, resolver=resolver)

    with pytest.raises(InputError) as caught:
        await guard.check("https://hooks.example.com:8443/reply?token=abc")

    assert caught.value.field == FIELD
    assert resolver.lookups == [("hooks.example.com", 8443)]


async def test_intake_refuses_a_name_when_any_answer_is_inside() -> None:
    resolver = FakeResolver({"hooks.example.com": [["93.184.215.14", "10.0.0.5"]]})
    guard = WebhookUrlGuard(allow_private=False, resolver=resolver)

    with pytest.raises(InputError):
        await guard.check("http://hooks.example.com/")


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "0177.0.0.1", "0x7f000001", "127.1"])
async def test_numeric_encodings_of_loopback_are_refused_through_the_system_resolver(host: str) -> None:
    assert await SystemResolver().resolve(host, 80) == ["127.0.0.1"]
    guard = WebhookUrlGuard(allow_private=False, resolver=SystemResolver())

    with pytest.raises(InputError) as caught:
        await guard.check(f"http://{host}:8080/hook")

    assert caught.value.field == FIELD


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("ftp://example.com/hook", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://example.com:70/_x", "http:// or https://"),
        ("example.com/hook", "http:// or https://"),
        ("http:///hook", "must name a host"),
        ("https://user:secret@example.com/hook", "credentials"),
        ("https://user@example.com/hook", "credentials"),
        ("https://example.com:0/hook", "port"),
        ("https://example.com:65536/hook", "port"),
        ("https://example.com:99999/hook", "port"),
        ("https://example.com/" + "a" * 2048, "at most 2048"),
        ("https://exa mple.com/hook", "whitespace or control"),
        ("https://example.com/ho\nok", "whitespace or control"),
        ("https://example.com/\x00", "whitespace or control"),
        ("https://example.com/\x7f", "whitespace or control"),
        ("http://[::1/hook", "not a valid URL"),
    ],
)
async def test_malformed_urls_are_refused_with_a_clear_message(url: str, complaint: str) -> None:
    resolver = FakeResolver({"example.com": [["93.184.215.14"]]})
    guard = WebhookUrlGuard(allow_private=True, resolver=resolver)

    with pytest.raises(InputError) as caught:
        await guard.check(url)

    assert caught.value.field == FIELD
    assert complaint in caught.value.message
    assert FIELD in caught.value.message


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.215.14/hook",
        "http://[2606:4700::1111]:8080/hook",
        "https://hooks.example.com/hook?token=abc",
        "HTTPS://HOOKS.EXAMPLE.COM/hook",
        "https://hooks.example.com:443/" + "a" * 2000,
    ],
)
async def test_public_destinations_are_accepted(url: str) -> None:
    resolver = FakeResolver({"hooks.example.com": [["93.184.215.14", "2606:4700::1111"]]})
    guard = WebhookUrlGuard(allow_private=False, resolver=resolver)

    await guard.check(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/hook", "http://[::1]:9000/", "http://intranet.local/x"])
async def test_allow_private_accepts_internal_destinations(url: str) -> None:
    guard = WebhookUrlGuard(allow_private=True, resolver=FakeResolver({"intranet.local": [["10.1.2.3"]]}))

    await guard.check(url)


async def test_a_name_that_does_not_resolve_now_is_accepted() -> None:
    resolver = FakeResolver()
    guard = WebhookUrlGuard(allow_private=False, resolver=resolver)

    await guard.check("https://not-yet-registered.example/hook")

    assert resolver.lookups == [("not-yet-registered.example", 443)]


@pytest.mark.parametrize("host", ["bad..name", "a" * 64 + ".example"])
async def test_the_system_resolver_reports_an_unresolvable_name_distinctly(host: str) -> None:
    # Names the resolver refuses without asking DNS, so the test does no network I/O.
    with pytest.raises(ResolutionFailed):
        await SystemResolver().resolve(host, 443)


# GuardedTransport, with the transport below it swapped for one that records what would be sent.


class Recorder:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(204)


def guarded_client(recorder: Recorder, resolver: FakeResolver, *, allow_private: bool) -> httpx.AsyncClient:
    inner = httpx.MockTransport(recorder)
    return httpx.AsyncClient(transport=GuardedTransport(inner, resolver=resolver, allow_private=allow_private))


async def test_a_guarded_https_request_is_pinned_to_the_checked_address() -> None:
    recorder = Recorder()
    resolver = FakeResolver({"hooks.example.com": [["93.184.215.14", "2606:4700::1111"]]})
    async with guarded_client(recorder, resolver, allow_private=False) as client:
        response = await client.post(
            "https://hooks.example.com:8443/reply?x=1", content=b"{}", extensions={GUARD_EXTENSION: True}
        )

    assert response.status_code == 204
    [sent] = recorder.requests
    assert str(sent.url) == "https://93.184.215.14:8443/reply?x=1"
    assert sent.headers["host"] == "hooks.example.com:8443"
    assert sent.extensions["sni_hostname"] == "hooks.example.com"
    assert sent.headers["connection"] == "close"
    assert GUARD_EXTENSION not in sent.extensions
    assert resolver.lookups == [("hooks.example.com", 8443)]
    assert str(response.request.url) == "https://hooks.example.com:8443/reply?x=1"


async def test_a_guarded_request_to_an_ipv6_answer_uses_a_bracketed_literal() -> None:
    recorder = Recorder()
    resolver = FakeResolver({"hooks.example.com": [["2606:4700::1111"]]})
    async with guarded_client(recorder, resolver, allow_private=False) as client:
        await client.post("http://hooks.example.com/reply", extensions={GUARD_EXTENSION: True})

    [sent] = recorder.requests
    assert str(sent.url) == "http://[2606:4700::1111]/reply"
    assert sent.headers["host"] == "hooks.example.com"
    assert "sni_hostname" not in sent.extensions


@pytest.mark.parametrize(
    ("url", "answers"),
    [
        ("http://hooks.example.com/", ["127.0.0.1"]),
        ("http://hooks.example.com/", ["93.184.215.14", "169.254.169.254"]),
        ("http://127.0.0.1:8080/", []),
        ("http://[::ffff:169.254.169.254]/", []),
    ],
)
async def test_a_guarded_request_to_an_inside_address_is_blocked_before_sending(url: str, answers: list[str]) -> None:
    recorder = Recorder()
    resolver = FakeResolver({"hooks.example.com": [answers]})
    async with guarded_client(recorder, resolver, allow_private=False) as client:
        with pytest.raises(BlockedDestination) as caught:
            await client.post(url, extensions={GUARD_EXTENSION: True})

    assert recorder.requests == []
    assert "not a public address" in caught.value.message


async def test_a_guarded_request_to_an_unresolvable_name_is_a_connect_error() -> None:
    recorder = Recorder()
    async with guarded_client(recorder, FakeResolver(), allow_private=False) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post("https://gone.example/hook", extensions={GUARD_EXTENSION: True})

    assert recorder.requests == []


async def test_allow_private_still_pins_but_does_not_block() -> None:
    recorder = Recorder()
    resolver = FakeResolver({"receiver.test": [["127.0.0.1"]]})
    async with guarded_client(recorder, resolver, allow_private=True) as client:
        await client.post("http://receiver.test:9000/hook", extensions={GUARD_EXTENSION: True})

    [sent] = recorder.requests
    assert str(sent.url) == "http://127.0.0.1:9000/hook"
    assert sent.headers["host"] == "receiver.test:9000"


async def test_unguarded_requests_pass_through_untouched() -> None:
    recorder = Recorder()
    resolver = FakeResolver()
    async with guarded_client(recorder, resolver, allow_private=False) as client:
        await client.get("http://127.0.0.1:54321/rest/v1/messages?select=*")

    [sent] = recorder.requests
    assert str(sent.url) == "http://127.0.0.1:54321/rest/v1/messages?select=*"
    assert resolver.lookups == []


async def test_marked_requests_go_through_the_pinned_transport_and_others_through_the_inner_one() -> None:
    marked, unmarked = Recorder(), Recorder()
    resolver = FakeResolver({"hooks.example.com": [["93.184.215.14"]]})
    transport = GuardedTransport(
        httpx.MockTransport(unmarked), resolver=resolver, allow_private=False, pinned=httpx.MockTransport(marked)
    )
    async with httpx.AsyncClient(transport=transport) as client:
        await client.post("https://hooks.example.com/reply", extensions={GUARD_EXTENSION: True})
        await client.post("http://127.0.0.1:54321/rest/v1/rpc/intake_message")

    [pinned] = marked.requests
    assert str(pinned.url) == "https://93.184.215.14/reply"
    assert pinned.extensions["sni_hostname"] == "hooks.example.com"
    assert [str(r.url) for r in unmarked.requests] == ["http://127.0.0.1:54321/rest/v1/rpc/intake_message"]


def test_each_process_client_sends_requests_through_the_chosen_pool_marked_ones_streamed() -> None:
    from neiromatrius.adapters.http_transport import ReadingAiohttpTransport, StreamingAiohttpTransport
    from neiromatrius.composition import http_client
    from neiromatrius.config import Settings

    base = {"supabase_url": "http://127.0.0.1:1", "supabase_service_role_key": "k", "secret_key": "s" * 32}
    pools = (("aiohttp", ReadingAiohttpTransport, StreamingAiohttpTransport), ("httpx", httpx.AsyncHTTPTransport, None))
    for transport, inner_type, pinned_type in pools:
        client = http_client(Settings(_env_file=None, http_transport=transport, **base))  # type: ignore[arg-type]
        guarded = client._transport
        assert isinstance(guarded, GuardedTransport)
        assert type(guarded._inner) is inner_type
        # Webhooks' answers are streamed, never read whole: the library's own transport, not the reading one.
        assert type(guarded._pinned_transport) is (pinned_type or inner_type)
