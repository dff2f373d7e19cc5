"""The composition root: builds every adapter from ``Settings`` and hands them to the API and the listener.

Each process opens one ``httpx.AsyncClient``: supabase-py, OpenAI and webhook delivery share it. Its
transport is a ``GuardedTransport``: the requests delivery marks are checked, pinned and sent through
httpx's own pool; all others go through aiohttp's (``HTTP_TRANSPORT``), which costs far less CPU.
Its cookie jar reads only responses that set a cookie: httpx would build urllib's request and response
stand-ins for every response to learn that there is none (a sixth of a request's own CPU here).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from starlette.applications import Starlette
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from .adapters.http_transport import ReadingAiohttpTransport, StreamingAiohttpTransport
from .adapters.netguard import GuardedTransport, SystemResolver, WebhookUrlGuard, local_origin
from .adapters.offline_responder import OfflineResponder
from .adapters.openai_responder import OpenAIResponder
from .adapters.rate_limiters import FallbackRateLimiter, MemoryRateLimiter, RedisRateLimiter
from .adapters.supabase_realtime import InboxFeed, RealtimeReplyWaiter
from .adapters.supabase_store import SupabaseCategories, SupabaseMessageStore
from .adapters.webhooks import WebhookDeliverer, webhook_secret
from .api import ApiServices, create_app
from .config import Settings
from .core.categories import CategoryCatalog, CategoryRefresher
from .core.delivery import DeliveryService, PlatformDeliverer
from .core.guard import ReplyGuard
from .core.ports import Deliverer, Feed, Responder, WorkQueue
from .core.prompt import system_prompt
from .core.triage import TriagePolicy, TriageService
from .listener.status import StatusServer, status_app
from .listener.worker import Listener, ListenerPolicy
from .metrics import MeteredDeliverer, MeteredIntake, MeteredResponder, MeteredWorkQueue, Metrics
from .telegram.bot_api import TelegramBotApi, TelegramDeliverer

T = TypeVar("T")


def _unchanged(adapter: T) -> T:
    return adapter


@dataclass(frozen=True)
class Seams:
    """Wrappers around the listener's work queue, model and deliverer, outermost (around the metering).

    The product leaves them as they are; the reliability tests wrap them to stop the process at one
    step of a message's way (after the claim, the model call, the reply write, a delivery)."""

    store: Callable[[WorkQueue], WorkQueue] = _unchanged
    responder: Callable[[Responder], Responder] = _unchanged
    deliverer: Callable[[Deliverer], Deliverer] = _unchanged


@dataclass(frozen=True)
class Resources:
    settings: Settings
    http: httpx.AsyncClient
    supabase: AsyncClient


class _SetCookiesOnly(httpx.Cookies):
    """A jar that reads a response only when it sets a cookie: the same jar, without the cost of the others."""

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


class ProcessClient(httpx.AsyncClient):
    """The process's shared client: httpx's own, with ``_SetCookiesOnly`` as its jar."""

    def __init__(self, *, cookies: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cookies = cookies

    @property
    def cookies(self) -> httpx.Cookies:
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._cookies: httpx.Cookies = _SetCookiesOnly(httpx.Cookies(cookies).jar)


def http_client(settings: Settings) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
    if settings.http_transport == "aiohttp":
        # Webhooks stream (their answers are not ours to read whole); the pinned request's sni_hostname
        # becomes aiohttp's server_hostname, so TLS checks the receiver's name, not the IP.
        pinned: httpx.AsyncBaseTransport = StreamingAiohttpTransport(limits=limits)
        inner: httpx.AsyncBaseTransport = ReadingAiohttpTransport(limits=limits)
    else:
        pinned = inner = httpx.AsyncHTTPTransport(limits=limits)
    transport = GuardedTransport(
        inner,
        resolver=SystemResolver(),
        allow_private=settings.allow_private_webhooks,
        pinned=pinned,
        allow_local=local_origin(settings.webhook_allow_local),
    )
    return ProcessClient(transport=transport, timeout=httpx.Timeout(10.0, connect=5.0), follow_redirects=False)


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    http = http_client(settings)
    try:
        options = AsyncClientOptions(httpx_client=http, auto_refresh_token=False, persist_session=False)
        supabase = await acreate_client(
            settings.supabase_url, settings.supabase_service_role_key.get_secret_value(), options
        )
        try:
            yield Resources(settings, http, supabase)
        finally:
            await supabase.remove_all_channels()
            await supabase.realtime.close()
    finally:
        await http.aclose()


def telegram_api(settings: Settings, http: httpx.AsyncClient) -> TelegramBotApi | None:
    if settings.telegram_bot_token is None:
        return None
    return TelegramBotApi(http, settings.telegram_bot_token.get_secret_value(), settings.telegram_api_url)


def deliverer(settings: Settings, http: httpx.AsyncClient) -> Deliverer:
    """Signed webhooks, and Telegram's sendMessage for Telegram conversations."""
    webhooks = WebhookDeliverer(http, webhook_secret(settings), settings.webhook_timeout_seconds)
    bot = telegram_api(settings, http)
    return PlatformDeliverer(webhooks, {"telegram": TelegramDeliverer(bot) if bot is not None else None})


def responder(settings: Settings, http: httpx.AsyncClient, catalog: CategoryCatalog | None = None) -> Responder:
    """OpenAI when a key is set; otherwise the offline rules, which say so in the stored model name."""
    if settings.openai_api_key is not None:
        return OpenAIResponder.from_settings(settings, http, catalog=catalog)
    return OfflineResponder(catalog or settings.categories)


def reply_guard(settings: Settings, catalog: CategoryCatalog | None = None) -> ReplyGuard:
    """The check on every answer: no canary, no stretch of the system prompt, no secret, a known category."""
    canary = settings.prompt_canary()
    secrets = [
        settings.secret_key,
        settings.supabase_service_role_key,
        settings.openai_api_key,
        settings.telegram_bot_token,
        settings.intake_api_key,
        settings.metrics_token,
    ]
    return ReplyGuard(
        categories=catalog or settings.categories,
        system_prompt=system_prompt(settings.categories, canary),
        canary=canary,
        secrets=[
            webhook_secret(settings),
            settings.telegram_secret(),
            *(secret.get_secret_value() for secret in secrets if secret is not None),
        ],
    )


def rate_limiter(settings: Settings) -> FallbackRateLimiter:
    """Buckets in Redis when ``REDIS_URL`` is set and Redis answers; in this process's memory otherwise."""
    redis = RedisRateLimiter.from_url(settings.redis_url) if settings.redis_url else None
    return FallbackRateLimiter(redis, MemoryRateLimiter())


def api_app(resources: Resources) -> Starlette:
    settings = resources.settings
    metrics = Metrics()
    store = SupabaseMessageStore(resources.supabase)

    async def is_final(message_id: str) -> bool:
        return (await store.get(message_id)).state.terminal

    waiter = RealtimeReplyWaiter(resources.supabase, is_final=is_final)
    limiter = rate_limiter(settings)

    async def start_waiter() -> None:
        await waiter.start()

    async def stop() -> None:
        try:
            await waiter.stop()
        finally:
            await limiter.aclose()

    services = ApiServices(
        store=MeteredIntake(store, metrics),
        waiter=waiter,
        # A short lookup: intake must not hang on slow DNS (a name that does not resolve is accepted).
        url_guard=WebhookUrlGuard(
            allow_private=settings.allow_private_webhooks,
            resolver=SystemResolver(timeout=2.0),
            allow_local=local_origin(settings.webhook_allow_local),
        ),
        limiter=limiter,
        cache_status=limiter.status,
        metrics=metrics,
        queue_stats=store.queue_stats,
        on_startup=start_waiter,
        on_shutdown=stop,
    )
    return create_app(settings, services)


def listener(
    resources: Resources,
    responder_override: Responder | None = None,
    metrics: Metrics | None = None,
    seams: Seams | None = None,
) -> Listener:
    """The listener; with ``metrics``, its store, model and deliveries are counted there."""
    settings = resources.settings
    # The business's categories (the table), read before the first claim and whenever they change;
    # CATEGORIES is the list used until then, or if the table cannot be read.
    catalog = CategoryCatalog(settings.categories)
    categories = CategoryRefresher(SupabaseCategories(resources.supabase), catalog)
    model = responder_override or responder(settings, resources.http, catalog)
    sender = deliverer(settings, resources.http)
    store = SupabaseMessageStore(
        resources.supabase, burst_windows=settings.burst_window_ms, context_limit=settings.context_max_messages
    )
    queue: WorkQueue = store
    if metrics is not None:
        queue = MeteredWorkQueue(store, metrics)
        model = MeteredResponder(model, metrics)
        sender = MeteredDeliverer(sender, metrics)
    if seams is not None:
        queue, model, sender = seams.store(queue), seams.responder(model), seams.deliverer(sender)
    triage = TriageService(
        queue,
        model,
        TriagePolicy(context_messages=settings.context_max_messages, lease_seconds=settings.lease_seconds),
        reply_guard(settings, catalog),
    )
    delivery = DeliveryService(
        store,
        sender,
        schedule=settings.webhook_retry_schedule,
        lease_seconds=settings.webhook_timeout_seconds * 2 + 5,
        batch_limit=8,
        # A slot for each message being answered, and as many again as four rounds take for retries and
        # operators' replies: a reply that finds every slot taken waits for a round.
        max_in_flight=settings.listener_concurrency + 32,
    )
    policy = ListenerPolicy(
        concurrency=settings.listener_concurrency,
        lease_seconds=settings.lease_seconds,
        sweep_interval=settings.sweep_interval_seconds,
        max_attempts=settings.max_attempts,
        delivery_poll=settings.delivery_poll_seconds,
        shutdown_grace=settings.shutdown_grace_seconds,
        burst_window=max(settings.burst_window_ms.values(), default=0) / 1000,
    )

    def feed(on_message: Callable[[str], None], on_ready: Callable[[], None]) -> Feed:
        return InboxFeed(
            resources.supabase,
            on_message,
            on_ready,
            reconnect_every=settings.sweep_interval_seconds,
            on_categories=categories.request,
        )

    return Listener(queue, triage, delivery, feed, policy, categories=categories)


def listener_status(resources: Resources, listener: Listener, metrics: Metrics) -> StatusServer | None:
    """``/metrics`` and ``/health`` on LISTENER_METRICS_HOST:PORT; None when the port is 0."""
    settings = resources.settings
    if settings.listener_metrics_port == 0:
        return None
    app = status_app(settings, metrics, SupabaseMessageStore(resources.supabase), lambda: listener.running)
    return StatusServer(app, settings.listener_metrics_host, settings.listener_metrics_port)
