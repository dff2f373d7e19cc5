"""The processes a pipeline benchmark runs: the local stack, ``neiromatrius api`` and ``neiromatrius listener``
(real processes, output to a log file), and the bare-insert baseline. Each is stopped by its owner."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg

from common import BENCH_ITEMS_SQL, HERE, listening
from neiromatrius_devstack.process import DevstackProcess, free_port

ROOT = HERE.parent
SECRET_KEY = "bench-secret-key-" + "b" * 32


@dataclass
class Stack:
    """The local stack with the project's migrations and the bare baseline's table."""

    folder: Path
    process: DevstackProcess = field(init=False)
    env: dict[str, str] = field(default_factory=dict)

    async def start(self) -> None:
        self.process = DevstackProcess(self.folder / "data", migrations_dir=ROOT / "supabase" / "migrations")
        self.env = self.process.start()
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(BENCH_ITEMS_SQL)
            await conn.execute("notify pgrst, 'reload schema'")
        finally:
            await conn.close()

    def stop(self) -> None:
        self.process.stop()

    @property
    def url(self) -> str:
        return self.env["SUPABASE_URL"]

    @property
    def service_key(self) -> str:
        return self.env["SUPABASE_SERVICE_ROLE_KEY"]

    @property
    def dsn(self) -> str:
        return self.env["DATABASE_URL"].replace("+asyncpg", "", 1)

    def pids(self) -> list[int]:
        """The gateway's process and Postgres's postmaster (a daemon: not the gateway's child)."""
        assert self.process.process is not None
        postmaster = int((self.folder / "data" / "pg" / "postmaster.pid").read_text().split()[0])
        return [self.process.process.pid, postmaster]

    def service_env(self, **overrides: str) -> dict[str, str]:
        inherited = ("SUPABASE_", "OPENAI_", "DATABASE_URL", "REDIS_URL", "RATE_LIMIT_", "LISTENER_", "TELEGRAM_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
        env.update(
            SUPABASE_URL=self.url,
            SUPABASE_SERVICE_ROLE_KEY=self.service_key,
            SUPABASE_ANON_KEY=self.env["SUPABASE_ANON_KEY"],
            SECRET_KEY=SECRET_KEY,
            ALLOW_PRIVATE_WEBHOOKS="true",  # the webhook sink is on loopback
            RATE_LIMIT_CLIENT_PER_MINUTE="0",
            RATE_LIMIT_CHAT_PER_MINUTE="0",
            LISTENER_METRICS_PORT="0",
            PYTHONUNBUFFERED="1",
        )
        env.update(overrides)
        return env


class Service:
    """A child process (``python -m neiromatrius <command>`` by default), its output in ``<folder>``."""

    def __init__(self, command: str, env: dict[str, str], folder: Path, argv: list[str] | None = None) -> None:
        self.command = command
        self.log = folder / f"{command}-{time.monotonic_ns()}.log"
        argv = argv or [sys.executable, "-m", "neiromatrius", command]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(argv, env=env, cwd=folder, stdout=out, stderr=out)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def wait_for_line(self, text: str, bound: float = 60.0) -> None:
        deadline = time.monotonic() + bound
        while text not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command} exited:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.command}: no {text!r} within {bound:g}s:\n{self.tail()}")
            await asyncio.sleep(0.1)

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def start_api(stack: Stack, folder: Path, **env: str) -> tuple[Service, str]:
    port = free_port()
    api = Service("api", stack.service_env(API_PORT=str(port), **env), folder)
    await api.wait_for_line("Starting up application")
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            async with session.get(f"{url}/health") as response:
                if response.status == 200:
                    return api, url
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the API never became healthy:\n{api.tail()}")


async def start_listener(stack: Stack, folder: Path, model_url: str, concurrency: int, **env: str) -> Service:
    listener = Service(
        "listener",
        stack.service_env(
            OPENAI_API_KEY="sk-bench",
            OPENAI_BASE_URL=model_url,
            LISTENER_CONCURRENCY=str(concurrency),
            **env,
        ),
        folder,
    )
    await listener.wait_for_line("subscribed to PostgreSQL changes")
    return listener


async def start_bare_insert(stack: Stack, folder: Path) -> tuple[Service, str]:
    """The bare Starlette endpoint doing one asyncpg INSERT (``bench/baseline_insert.py``)."""
    port = free_port()
    argv = [sys.executable, str(HERE / "baseline_insert.py"), stack.dsn, str(port)]
    bare = Service("baseline_insert", dict(os.environ), folder, argv)
    await listening(port)
    return bare, f"http://127.0.0.1:{port}/insert"
