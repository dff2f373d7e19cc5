from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from tests.support.fakes import FakeCache, FakeMessageIntake, FakeRateLimiter, FakeReplyWaiter, FakeUrlGuard

from .harness import BLOCKED_URL, Api, build_services, make_client, make_settings

MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api() -> AsyncIterator[MakeApi]:
    """Start an API (lifespan included) with the given settings; everything stops after the test."""
    async with AsyncExitStack() as stack:

        async def make(*, cache_status: str = "ok", raise_app_exceptions: bool = True, **settings: Any) -> Api:
            store, waiter, cache = FakeMessageIntake(), FakeReplyWaiter(), FakeCache(cache_status)
            guard = FakeUrlGuard(blocked=frozenset({BLOCKED_URL}))
            current = make_settings(**settings)
            limiter = FakeRateLimiter()
            services = build_services(store, waiter, guard, cache, limiter)
            app, client = make_client(current, services, raise_app_exceptions=raise_app_exceptions)
            await stack.enter_async_context(app.router.lifespan_context(app))
            await stack.enter_async_context(client)
            return Api(
                app=app,
                client=client,
                settings=current,
                store=store,
                waiter=waiter,
                guard=guard,
                cache=cache,
                limiter=limiter,
            )

        yield make


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    return await make_api()
