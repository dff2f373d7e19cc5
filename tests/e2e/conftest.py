"""End-to-end fixtures: the API and listeners as real processes (or the listener in-process, where the
test mocks OpenAI with respx through the listener's own httpx client), a loopback webhook receiver."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest

from neiromatrius import composition
from neiromatrius.config import Settings
from neiromatrius.core.ports import Responder
from neiromatrius.listener.worker import Listener
from neiromatrius_devstack.process import free_port
from tests.conftest import Stack
from tests.integration.pipeline.conftest import pipeline_settings
from tests.support.waiting import blocking_eventually

SECRET_KEY = "e2e-secret-key-" + "k" * 32
READY_BOUND = 60.0


class ServiceProcess:
    """``python -m neiromatrius <command>`` (or another ``module``) with its output collected line by line."""

    def __init__(self, command: str, env: dict[str, str], cwd: Path, module: str = "neiromatrius") -> None:
        self.command = command
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, command],
            env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for_line(self, text: str, bound: float = READY_BOUND) -> str:
        def found() -> str | None:
            return next((line for line in self.lines if text in line), None)

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None or self.process.poll() is not None, bound):
                raise TimeoutError(f"{self.command}: no line with {text!r} within {bound}s:\n" + self.output())
        line = found()
        if line is None:
            raise RuntimeError(f"{self.command} exited ({self.process.returncode}):\n" + self.output())
        return line

    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close()
        return self.process.returncode

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._close()

    def _close(self) -> None:
        self._drainer.join(10)  # it ends at EOF, now that the process has exited
        if self.process.stdout is not None:
            self.process.stdout.close()


def service_env(stack: Stack, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "OPENAI_", "DATABASE_URL"))}
    env.update(
        SUPABASE_URL=stack.url,
        SUPABASE_SERVICE_ROLE_KEY=stack.service_key,
        SUPABASE_ANON_KEY=stack.anon_key,
        SECRET_KEY=SECRET_KEY,
        ALLOW_PRIVATE_WEBHOOKS="true",
        REPLY_WAIT_SECONDS="15",
        SWEEP_INTERVAL_SECONDS="0.5",
        DELIVERY_POLL_SECONDS="0.2",
        LEASE_SECONDS="3",
        WEBHOOK_RETRY_SCHEDULE="0.2,0.2,0.2",
        WEBHOOK_TIMEOUT_SECONDS="2",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
        LISTENER_METRICS_PORT="0",  # several listeners share this machine; a test that scrapes sets one
    )
    env.update(overrides)
    return env


StartService = Callable[..., ServiceProcess]


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[StartService]:
    started: list[ServiceProcess] = []

    def start(command: str, env: dict[str, str], module: str = "neiromatrius") -> ServiceProcess:
        service = ServiceProcess(command, env, tmp_path, module)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def listener_env(stack: Stack, **overrides: str) -> dict[str, str]:
    return service_env(stack, **({"LISTENER_CONCURRENCY": "4"} | overrides))


def start_listener(start_service: StartService, env: dict[str, str], module: str = "neiromatrius") -> ServiceProcess:
    service = start_service("listener", env, module)
    service.wait_for_line("consumers")
    return service


async def send(http: httpx.AsyncClient, api_url: str, client_id: str, chat: str, text: str, hook: str) -> str:
    response = await http.post(
        f"{api_url}/api/messages/",
        headers={"X-Webhook-URL": hook, "X-Platform": "test", "X-Chat-ID": chat, "Prefer": "respond-async"},
        json={"client_id": client_id, "content": text},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def wait_until_healthy(url: str, service: ServiceProcess, bound: float = READY_BOUND) -> None:
    with httpx.Client(timeout=2) as client:

        def healthy() -> bool:
            if service.process.poll() is not None:
                raise RuntimeError(f"the API exited ({service.process.returncode}):\n{service.output()}")
            try:
                return client.get(f"{url}/health").status_code == 200
            except httpx.HTTPError:
                return False

        try:
            blocking_eventually(healthy, bound, every=0.1)
        except TimeoutError:
            raise TimeoutError(f"the API was not healthy within {bound}s:\n{service.output()}") from None


@pytest.fixture
def api(stack: Stack, start_service: StartService) -> Callable[..., tuple[str, ServiceProcess]]:
    """Start ``neiromatrius api`` on a free port; return its URL and process."""

    def start(target: Stack | None = None, **env: str) -> tuple[str, ServiceProcess]:
        port = free_port()
        service = start_service("api", service_env(target or stack, API_PORT=str(port), **env))
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, service)
        return url, service

    return start


@pytest.fixture
def e2e_settings(stack: Stack) -> Settings:
    return pipeline_settings(stack, secret_key=SECRET_KEY, lease_seconds=3)


@asynccontextmanager
async def running_listener(settings: Settings, responder: Responder | None = None) -> AsyncIterator[Listener]:
    """A listener in this process (so respx sees its OpenAI calls), stopped as SIGTERM would."""
    async with composition.open_resources(settings) as resources:
        listener = composition.listener(resources, responder)
        task = asyncio.create_task(listener.run())
        try:
            yield listener
        finally:
            listener.stop()
            await asyncio.wait_for(task, 30)


@pytest.fixture
async def clean_clients(db: asyncpg.Connection) -> AsyncIterator[list[str]]:
    """Client ids a test writes under; deleted (with everything of theirs) afterwards."""
    ids: list[str] = []
    yield ids
    await db.execute("delete from public.clients where id = any($1::text[])", ids)
