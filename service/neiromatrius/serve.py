"""The two processes of the image: ``neiromatrius api`` and ``neiromatrius listener``."""

from __future__ import annotations

import asyncio
import logging
import signal

import uvicorn

from . import composition
from .config import Settings
from .errors import PollingConflict
from .metrics import Metrics

logger = logging.getLogger(__name__)


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


async def serve_listener(settings: Settings, seams: composition.Seams | None = None) -> None:
    async with composition.open_resources(settings) as resources:
        metrics = Metrics()
        listener = composition.listener(resources, metrics=metrics, seams=seams)
        status = composition.listener_status(resources, listener, metrics)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, listener.stop)
        serving = asyncio.create_task(status.serve()) if status is not None else None
        if status is not None:
            logger.info("listener: /metrics and /health on %s:%d", settings.listener_metrics_host, status.port)
        try:
            await listener.run()
        finally:
            if status is not None and serving is not None:
                status.stop()
                await serving
        logger.info("listener %s: stopped", listener.worker)


async def serve_telegram_poll(settings: Settings) -> int:
    """Long-poll Telegram and store its updates until SIGTERM; 1 when a webhook is in the way."""
    from .adapters.supabase_store import SupabaseMessageStore
    from .telegram.commands import Poller

    async with composition.open_resources(settings) as resources:
        bot = composition.telegram_api(settings, resources.http)
        if bot is None:
            raise RuntimeError("serve_telegram_poll needs TELEGRAM_BOT_TOKEN")
        poller = Poller(bot, SupabaseMessageStore(resources.supabase), settings.max_content_chars)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, poller.stop)
        logger.info("Telegram: polling for updates (the listener answers them)")
        try:
            await poller.run()
        except PollingConflict:
            logger.error(
                "Telegram: a webhook is registered; run `neiromatrius telegram delete-webhook` to poll instead"
            )
            return 1
        logger.info("Telegram: polling stopped; %d new messages stored", poller.stored)
        return 0
