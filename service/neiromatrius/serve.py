"""The two processes of the image: ``neiromatrius api`` and ``neiromatrius listener``."""

from __future__ import annotations

import asyncio
import logging
import signal

import uvicorn

from . import composition
from .config import Settings

log = logging.getLogger(__name__)


async def serve_api(settings: Settings) -> None:
    async with composition.open_resources(settings) as resources:
        app = composition.api_app(resources)
        config = uvicorn.Config(
            app,
            host=settings.api_host,
            port=settings.api_port,
            log_config=None,  # our logging (JSON lines off a TTY), configured by the CLI
            access_log=False,  # the API logs one summary line per request itself
            ws="none",
            lifespan="on",
            timeout_graceful_shutdown=int(max(5, settings.reply_wait_seconds + 1)),
        )
        server = uvicorn.Server(config)
        await server.serve()
        if not server.started:
            raise SystemExit(1)


async def serve_listener(settings: Settings) -> None:
    async with composition.open_resources(settings) as resources:
        listener = composition.listener(resources)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, listener.stop)
        await listener.run()
        log.info("listener %s: stopped", listener.worker)
