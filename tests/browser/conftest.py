"""Browser tests of the operator console: real processes (the local stack, the API, the listener with the
offline model, the console's Next server) and Debian's Chromium driven by playwright-core.

The console reaches Supabase through a TCP proxy (tests/reliability/tcp_proxy.py) that a test can cut and
restore; the API and the listener talk to the stack directly. The proxy runs on an event loop of its
own thread, so the module's processes are started once and shared by its tests (CPU is scarce).
Screenshots go to frontend/test-results/screenshots (`make test` prints the folder).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from neiromatrius import console
from neiromatrius_devstack.process import free_port
from tests.conftest import Stack
from tests.e2e.conftest import ServiceProcess, listener_env, service_env, wait_until_healthy
from tests.reliability.tcp_proxy import TcpProxy
from tests.support.http_receiver import Receiver, Reply

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
SCREENSHOTS = FRONTEND / "test-results" / "screenshots"
DRIVER = FRONTEND / "tests" / "browser" / "driver.mjs"
CHROMIUM = "/usr/bin/chromium"


class ProxyThread:
    """A TcpProxy on its own event loop thread, so synchronous tests can cut and restore it."""

    def __init__(self, upstream_port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy = TcpProxy(upstream_port)
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self.loop).result(10)

    @property
    def url(self) -> str:
        return self.proxy.url

    def cut(self) -> None:
        """Refuse new connections and close every open one (the browser's websocket included)."""

        def go() -> None:
            self.proxy.refusing = True
            self.proxy.cut()

        self.loop.call_soon_threadsafe(go)

    def run(self, coro: Any, bound: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(bound)

    def restore(self) -> None:
        self.loop.call_soon_threadsafe(setattr, self.proxy, "refusing", False)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()  # its self-pipe (a socketpair) would otherwise leak into a later test as a ResourceWarning


class Browser:
    """The Node driver (frontend/tests/browser/driver.mjs): one JSON command per line, one answer back."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            ["node", str(DRIVER)], cwd=FRONTEND, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                                      "CHROMIUM": CHROMIUM, "HOME": "/tmp"},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def __call__(self, cmd: str, **params: Any) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"cmd": cmd, **params}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the browser driver exited ({self.process.poll()})")
        answer = json.loads(line)
        if not answer["ok"]:
            raise AssertionError(f"{cmd} {params}: {answer['error']}")
        return answer["value"]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass(frozen=True)
class Operator:
    email: str
    password: str
    user_id: str


@dataclass
class Console:
    url: str
    api_url: str
    stack: Stack
    proxy: ProxyThread
    operator: Operator
    browser: Browser
    process: ServiceProcess
    receiver: Receiver | None  # the webhook receiver replies are delivered to, when the rig has one

    @property
    def hook(self) -> str:
        assert self.receiver is not None
        return self.receiver.url()

    def page(self, locale: str = "en-US", holdable: bool = False) -> int:
        """A new page; ``holdable``: its websockets go through the driver, which can hold back the server's frames."""
        return int(self.browser("open", locale=locale, baseURL=self.url, holdable=holdable))

    def sign_in(self, page: int, path: str = "/inbox") -> None:
        b = self.browser
        assert b("goto", page=page, url=path).startswith(f"{self.url}/login?next=")
        b("fill", page=page, selector="#email", value=self.operator.email)
        b("fill", page=page, selector="#password", value=self.operator.password)
        b("click", page=page, selector="button[type=submit]")
        b("waitForUrl", page=page, pattern=f"{path}$", timeout=15000)

    def send(self, chat: str, text: str, hook: str, client_id: str = "browser-tests") -> dict[str, Any]:
        """POST /api/messages/ through the console's /api pass-through (NEXT_PUBLIC_API_URL's default)."""
        response = httpx.post(
            f"{self.url}/api/messages/",
            headers={"X-Webhook-URL": hook, "X-Platform": "test", "X-Chat-ID": chat, "Prefer": "respond-async"},
            json={"client_id": client_id, "content": text},
            timeout=10,
        )
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    def screenshot(self, page: int, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return Path(self.browser("screenshot", page=page, path=str(SCREENSHOTS / f"{name}.png")))


def make_operator(stack: Stack, role: str = "admin") -> Operator:
    """An operator as a deployment makes one: a user through the Auth admin API, then its operators row."""
    email = f"console-{uuid.uuid4().hex[:8]}@test.neiromatrius.local"
    password = f"pw-{uuid.uuid4().hex}"
    admin = {"apikey": stack.service_key, "Authorization": f"Bearer {stack.service_key}"}
    user = httpx.post(f"{stack.url}/auth/v1/admin/users", headers=admin, timeout=10,
                      json={"email": email, "password": password, "email_confirm": True})  # fmt: skip
    assert user.status_code == 200, user.text
    user_id = user.json()["id"]
    row = httpx.post(f"{stack.url}/rest/v1/operators", headers=admin, timeout=10,
                     json={"user_id": user_id, "role": role, "display_name": "Browser test"})  # fmt: skip
    assert row.status_code == 201, row.text
    return Operator(email, password, user_id)


@pytest.fixture(scope="session")
def built_console() -> Path:
    """The console built once (skipped when its sources are those of the last build)."""
    subprocess.run([str(ROOT / "scripts" / "install-chromium")], check=True, timeout=600)
    console.ensure_built(FRONTEND)
    return FRONTEND


@pytest.fixture(scope="module")
def console_rig(stack: Stack, built_console: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    work = tmp_path_factory.mktemp("console")
    proxy = ProxyThread(int(stack.url.rsplit(":", 1)[1]))
    started: list[ServiceProcess] = []
    browser: Browser | None = None
    try:
        api_port = free_port()
        api = ServiceProcess("api", service_env(stack, API_PORT=str(api_port)), work)
        started.append(api)
        api_url = f"http://127.0.0.1:{api_port}"
        wait_until_healthy(api_url, api)
        listener = ServiceProcess("listener", listener_env(stack), work)
        started.append(listener)
        listener.wait_for_line("consumers")
        port = free_port()
        proxied = dataclasses.replace(stack, url=proxy.url)
        process = ServiceProcess(
            "console", service_env(proxied, FRONTEND_PORT=str(port), BACKEND_API_URL=api_url), work
        )
        started.append(process)
        process.wait_for_line("✓ Ready in")
        browser = Browser()
        receiver = Receiver([Reply()])
        proxy.run(receiver.start())
        try:
            yield Console(
                f"http://127.0.0.1:{port}", api_url, stack, proxy, make_operator(stack), browser, process, receiver
            )
        finally:
            proxy.run(receiver.close())
    finally:
        if browser is not None:
            browser.close()
        for service in reversed(started):
            service.stop()
        proxy.close()
