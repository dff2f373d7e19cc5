"""SSRF defences for caller-supplied webhook URLs: address policy, intake check, pinned transport.

The URL is checked twice. At intake, ``WebhookUrlGuard`` rejects what can never be delivered.
At delivery, ``GuardedTransport`` resolves the name once, checks every answer and connects to the
address it checked, so DNS rebinding between check and connect cannot reach an internal address.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket

import httpx

from ..core.models import MAX_WEBHOOK_URL_CHARS
from ..core.models import WEBHOOK_URL_HEADER as FIELD
from ..core.ports import Resolver
from ..errors import BlockedDestination, InputError, ResolutionFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The request extension that asks GuardedTransport to check and pin a request's destination.
GUARD_EXTENSION = "neiromatrius.guard"

# CPython's flags have been wrong before (CVE-2024-4032) and lag IANA, so an explicit list backs them.
_DENY_V4 = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT; holds Alibaba's metadata address 100.100.100.200
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local; holds the cloud metadata address 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_DENY_V6 = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "::/128",
        "::1/128",
        "::/96",  # deprecated IPv4-compatible addresses
        "::ffff:0:0/96",  # IPv4-mapped: only reached when not unwrapped, which is_public_address never does
        "64:ff9b::/96",  # NAT64 would translate to any IPv4 address, internal ones included
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",  # deprecated site-local
        "ff00::/8",
        "2001:db8::/32",
    )
)


def is_public_address(ip: IPAddress) -> bool:
    """True only for globally routable addresses outside the deny list, embedded IPv4 included."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return is_public_address(ip.ipv4_mapped)
    return _plainly_public(ip) and all(_plainly_public(inner) for inner in _embedded_ipv4(ip))


def _embedded_ipv4(ip: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    if isinstance(ip, ipaddress.IPv4Address):
        return ()
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo  # (server, client)
    return ()


def _plainly_public(ip: IPAddress) -> bool:
    if not ip.is_global:
        return False
    if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return False
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
        _DENY_V4 if isinstance(ip, ipaddress.IPv4Address) else _DENY_V6
    )
    return not any(ip in network for network in networks)


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class SystemResolver:
    """The operating system's resolver. It reads ``2130706433``, ``0x7f.1`` and ``0177.0.0.1`` as
    127.0.0.1, like the connection would, so the check sees the address that would be dialled."""

    def __init__(self, timeout: float = 5.0) -> None:
        self._timeout = timeout

    async def resolve(self, host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise ResolutionFailed(f"resolving {host} timed out") from None
        except (OSError, UnicodeError) as exc:
            raise ResolutionFailed(f"{host} does not resolve") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise ResolutionFailed(f"{host} does not resolve")
        return addresses


def _first_non_public(addresses: list[str]) -> str | None:
    for address in addresses:
        ip = _parse_ip(address)
        if ip is None or not is_public_address(ip):
            return address
    return None


class LocalOrigin:
    """The one loopback origin (``WEBHOOK_ALLOW_LOCAL``, e.g. ``http://127.0.0.1:8001``) let through the guard:
    ``neiromatrius run``'s webhook inbox. Only an IP literal with that scheme and port matches, never a name
    (which could resolve elsewhere later) and never another port on the same address."""

    def __init__(self, origin: str) -> None:
        parsed = httpx.URL(origin)
        ip = _parse_ip(parsed.host)
        if parsed.scheme != "http" or ip is None or not ip.is_loopback or parsed.port is None:
            raise ValueError("WEBHOOK_ALLOW_LOCAL must be http://127.0.0.1:PORT or http://[::1]:PORT")
        self._key = ("http", ip, parsed.port)

    def matches(self, url: httpx.URL) -> bool:
        return (url.scheme, _parse_ip(url.host), url.port) == self._key


def local_origin(origin: str | None) -> LocalOrigin | None:
    return None if origin is None else LocalOrigin(origin)


class WebhookUrlGuard:
    """Accepts a webhook URL at intake only if it is well-formed and does not point inside."""

    def __init__(self, *, allow_private: bool, resolver: Resolver, allow_local: LocalOrigin | None = None) -> None:
        self._allow_private = allow_private
        self._allow_local = allow_local
        self._resolver = resolver

    async def check(self, url: str) -> None:
        parsed = _parse_url(url)
        host = parsed.raw_host.decode("ascii")
        if self._allow_private or (self._allow_local is not None and self._allow_local.matches(parsed)):
            return
        literal = _parse_ip(host)
        if literal is not None:
            addresses = [host]
        else:
            try:
                addresses = await self._resolver.resolve(host, _port(parsed))
            except ResolutionFailed:
                return
        if _first_non_public(addresses) is not None:
            raise InputError(FIELD, f"{FIELD} points to a private, loopback, link-local or metadata address")


@functools.lru_cache(maxsize=1024)
def _parse_url(url: str) -> httpx.URL:
    """Parse with httpx, the parser that will send the request, so both read the URL alike. A business's
    callers send the same few URLs again and again: each is parsed once (a refusal is not kept)."""
    if len(url) > MAX_WEBHOOK_URL_CHARS:
        raise InputError(FIELD, f"{FIELD} must be at most {MAX_WEBHOOK_URL_CHARS} characters")
    if any(char.isspace() or not char.isprintable() for char in url):
        raise InputError(FIELD, f"{FIELD} must not contain whitespace or control characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise InputError(FIELD, f"{FIELD} is not a valid URL") from None
    if parsed.scheme not in ("http", "https"):
        raise InputError(FIELD, f"{FIELD} must be an http:// or https:// URL")
    if not parsed.raw_host:
        raise InputError(FIELD, f"{FIELD} must name a host")
    if parsed.userinfo:
        raise InputError(FIELD, f"{FIELD} must not contain credentials (user:password@)")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise InputError(FIELD, f"{FIELD} has a port outside 1-65535")
    return parsed


def _port(url: httpx.URL) -> int:
    if url.port is not None:
        return url.port
    return 443 if url.scheme == "https" else 80


class GuardedTransport(httpx.AsyncBaseTransport):
    """Checks and pins requests marked with the ``GUARD_EXTENSION``; passes all others through.

    A marked request is resolved once; if any answer is not public it raises ``BlockedDestination``
    before connecting. Otherwise it is sent to the first answer's IP literal, with the original
    ``Host`` header and, for https, the original name as TLS SNI (so the certificate is checked
    against the name). A name that does not resolve raises ``httpx.ConnectError``.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        resolver: Resolver,
        allow_private: bool,
        pinned: httpx.AsyncBaseTransport | None = None,
        allow_local: LocalOrigin | None = None,
    ) -> None:
        self._inner = inner if inner is not None else httpx.AsyncHTTPTransport()
        # Marked requests may go through a transport of their own: the pinning relies on how httpx's
        # pool keys connections (by the IP literal) and applies ``sni_hostname``.
        self._pinned_transport = pinned if pinned is not None else self._inner
        self._resolver = resolver
        self._allow_private = allow_private
        self._allow_local = allow_local

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not request.extensions.get(GUARD_EXTENSION):
            return await self._inner.handle_async_request(request)
        return await self._pinned_transport.handle_async_request(await self._pinned(request))

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if self._pinned_transport is not self._inner:
                await self._pinned_transport.aclose()

    async def _pinned(self, request: httpx.Request) -> httpx.Request:
        host = request.url.raw_host.decode("ascii")
        if _parse_ip(host) is not None:
            addresses = [host]
        else:
            try:
                addresses = await self._resolver.resolve(host, _port(request.url))
            except ResolutionFailed as exc:
                raise httpx.ConnectError(exc.message, request=request) from exc
        allowed_local = self._allow_local is not None and self._allow_local.matches(request.url)
        if not self._allow_private and not allowed_local:
            blocked = _first_non_public(addresses)
            if blocked is not None:
                raise BlockedDestination(f"{host} resolves to {blocked}, which is not a public address")
        extensions = {key: value for key, value in request.extensions.items() if key != GUARD_EXTENSION}
        headers = request.headers.copy()
        headers.setdefault("Host", request.url.netloc.decode("ascii"))
        if request.url.scheme == "https":
            extensions["sni_hostname"] = host
            # The pool keys connections by IP, not name: a kept-alive TLS connection could carry a
            # later request for another name on the same IP, whose certificate was never checked.
            headers["Connection"] = "close"
        return httpx.Request(
            request.method,
            request.url.copy_with(host=addresses[0]),
            headers=headers,
            stream=request.stream,
            extensions=extensions,
        )
