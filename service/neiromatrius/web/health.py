"""The database check behind every ``/health``: any failure reads as "unavailable", never as an error."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

HEALTH_WITHIN = 5.0


async def database_answers(ping: Callable[[], Awaitable[None]], within: float = HEALTH_WITHIN) -> bool:
    """True when ``ping`` returns within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            await ping()
    # A health check reports any failure as "unavailable" rather than failing itself.
    except Exception as exc:
        logger.warning("Health check: the database does not answer: %r", exc)
        return False
    return True
