"""Shared by the outage tests: a local stack of the test's own, the API and listener as processes, the
rows as the database holds them, and the listener's oldest-pending gauge as Prometheus would read it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from neiromatrius_devstack.process import DevstackProcess, free_port
from tests.conftest import Stack
from tests.e2e.conftest import ServiceProcess, service_env, wait_until_healthy

OLDEST_PENDING = "neiromatrius_oldest_pending_message_age_seconds"
QUEUE_STATS_UP = "neiromatrius_queue_stats_up"
TERMINAL = ("answered", "handoff", "failed")


@contextmanager
def private_stack(data_dir: Path) -> Iterator[tuple[Stack, DevstackProcess]]:
    """A local stack nobody else uses: the test may stop it and start it again (same ports, same data)."""
    process = DevstackProcess(data_dir)
    env = process.start()
    try:
        yield (
            Stack(
                url=env["SUPABASE_URL"],
                anon_key=env["SUPABASE_ANON_KEY"],
                service_key=env["SUPABASE_SERVICE_ROLE_KEY"],
                jwt_secret=env["SUPABASE_JWT_SECRET"],
                database_url=env["DATABASE_URL"].replace("+asyncpg", "", 1),
                local=True,
            ),
            process,
        )
    finally:
        process.stop()


@dataclass
class Services:
    """``neiromatrius api`` / ``listener`` processes of one test, stopped (SIGTERM) when it ends."""

    cwd: Path
    started: list[ServiceProcess] = field(default_factory=list)

    async def api(self, stack: Stack, **env: str) -> tuple[str, ServiceProcess]:
        port = free_port()
        # Many messages from one client within a minute: the rate limits are not these tests' subject.
        limits = {"RATE_LIMIT_CLIENT_PER_MINUTE": "0", "RATE_LIMIT_CHAT_PER_MINUTE": "0"}
        service = self._start("api", service_env(stack, API_PORT=str(port), **(limits | env)))
        url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(wait_until_healthy, url, service)
        return url, service

    async def listener(self, stack: Stack, **env: str) -> tuple[str, ServiceProcess]:
        """A listener serving /metrics on a port of its own; return that URL and the process."""
        port = free_port()
        service = self._start("listener", service_env(stack, LISTENER_METRICS_PORT=str(port), **env))
        await asyncio.to_thread(service.wait_for_line, "consumers")
        return f"http://127.0.0.1:{port}", service

    def _start(self, command: str, env: dict[str, str]) -> ServiceProcess:
        service = ServiceProcess(command, env, self.cwd)
        self.started.append(service)
        return service

    def stop(self) -> None:
        for service in reversed(self.started):
            service.stop()


async def fetch(stack: Stack, query: str, *args: Any) -> list[asyncpg.Record]:
    """One query on a connection of its own (the server may have restarted since the last one)."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def states(stack: Stack, ids: list[str]) -> dict[str, str]:
    rows = await fetch(stack, "select id, state from messages where id = any($1::uuid[])", [uuid.UUID(i) for i in ids])
    return {str(row["id"]): row["state"] for row in rows}


async def all_finished(stack: Stack, ids: list[str]) -> bool:
    found = await states(stack, ids)
    return len(found) == len(ids) and all(state in TERMINAL for state in found.values())


async def gauges(http: httpx.AsyncClient, metrics_url: str) -> dict[str, float]:
    """The listener's unlabelled gauges, from one scrape of ``/metrics``."""
    response = await http.get(f"{metrics_url}/metrics")
    assert response.status_code == 200, response.text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if not sample.labels
    }


async def caught_up(http: httpx.AsyncClient, metrics_url: str) -> dict[str, float] | None:
    """The scrape once the listener read the queue and nothing waits any more; None until then."""
    scrape = await gauges(http, metrics_url)
    return scrape if scrape.get(QUEUE_STATS_UP) == 1 and scrape.get(OLDEST_PENDING) == 0 else None


async def post(
    http: httpx.AsyncClient, api_url: str, client_id: str, hook_url: str, chat: str, *, wait: bool = False
) -> httpx.Response:
    headers = {
        "X-Webhook-URL": hook_url,
        "X-Platform": "test",
        "X-Chat-ID": chat,
        "Idempotency-Key": uuid.uuid4().hex,
    }
    if not wait:
        headers["Prefer"] = "respond-async"
    return await http.post(
        f"{api_url}/api/messages/", headers=headers, json={"client_id": client_id, "content": "Где мой заказ?"}
    )


async def accepted(http: httpx.AsyncClient, api_url: str, client_id: str, hook_url: str, count: int) -> list[str]:
    """``count`` messages posted with ``Prefer: respond-async``, each answered 202; their ids."""
    ids = []
    for n in range(count):
        response = await post(http, api_url, client_id, hook_url, f"chat-{n % 4}")
        assert response.status_code == 202, response.text
        ids.append(str(response.json()["id"]))
    return ids
