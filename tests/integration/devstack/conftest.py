"""Fixtures of the /auth/v1 conformance tests (a module may override ``gotrue`` with its own stack)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import Stack
from tests.support.gotrue import GoTrue, UserFactory, user_factory


@pytest.fixture
async def gotrue(stack: Stack) -> AsyncIterator[GoTrue]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield GoTrue(stack, http)


@pytest.fixture
async def make_user(gotrue: GoTrue) -> AsyncIterator[UserFactory]:
    async for factory in user_factory(gotrue):
        yield factory
