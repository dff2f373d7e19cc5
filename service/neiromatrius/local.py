"""``neiromatrius run`` (``make run``): the local stack, the API and the listener, as three processes,
and a webhook inbox on loopback (a thread of this process) where replies arrive, signed.

The stack is started first (migrations applied, the seed on a fresh data folder), then the API and the
listener with its URL and keys in their environment, and ``WEBHOOK_ALLOW_LOCAL`` naming the inbox: the
one loopback origin the SSRF guard lets through. Any child ending stops the others; Ctrl-C or SIGTERM
stops everything.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from neiromatrius_devstack.process import DevstackProcess

from .adapters.webhooks import webhook_secret
from .config import load_settings
from .errors import ConfigError
from .inbox import WebhookInbox

if TYPE_CHECKING:
    from .local_admin import LocalAdmin

API_READY_TIMEOUT = 60.0
CONSOLE_READY_TIMEOUT = 60.0  # an already built console serves in about a second
CONSOLE_PORT = 3000

CURL = """curl -X POST {api}/api/messages/ \\
  -H "Content-Type: application/json" \\
  -H "X-Webhook-URL: https://test-webhook.com/test" \\
  -H "X-Platform: test" \\
  -H "X-Chat-ID: test-123" \\
  -d '{{"client_id": "test_client_001", "content": "Привет! Тестовое сообщение"}}'"""

INBOX_CURL = """curl -X POST {api}/api/messages/ \\
  -H "Content-Type: application/json" \\
  -H "X-Webhook-URL: {hook}" \\
  -H "X-Platform: test" \\
  -H "X-Chat-ID: local-1" \\
  -d '{{"client_id": "local_client_001", "content": "Hello! What are your prices?"}}'"""


@dataclass(frozen=True)
class LocalOptions:
    port: int
    db_port: int
    api_port: int
    data_dir: Path
    env_file: Path
    migrations_dir: Path
    fresh: bool
    database_url: str | None
    inbox_port: int = 8001
    seed_file: Path | None = None


class LocalSystem:
    def __init__(self, options: LocalOptions) -> None:
        self.options = options
        extra = {"DATABASE_URL": options.database_url} if options.database_url else {}
        self.stack = DevstackProcess(
            options.data_dir.resolve(),
            migrations_dir=options.migrations_dir,
            port=options.port,
            db_port=options.db_port,
            extra_env=extra,
            env_path=options.env_file,
            own_session=True,
        )
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.inbox: WebhookInbox | None = None
        self._stop = threading.Event()

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self._stop.set())
        try:
            try:
                stack_env = self.stack.start(*self._stack_args())
            except RuntimeError:
                said = [line.strip().removeprefix("❌ ") for line in self.stack.output if line.startswith("❌")]
                print("❌ the local stack did not start" + (f": {said[-1]}" if said else "; see its log above"),
                      "   Is another stack running? Stop it, or try"
                      " `.venv/bin/neiromatrius run --db-port N --port M`, or `--fresh`.",
                      sep="\n", file=sys.stderr)  # fmt: skip
                return 1
            env = self._child_env(stack_env)
            self.inbox = self._start_inbox(env)
            if self.inbox is None:
                return 1
            env["WEBHOOK_ALLOW_LOCAL"] = self.inbox.url
            admin = self._local_admin(env)
            self.children["api"] = self._spawn("api", env)
            if not self._wait_for_api():
                print("❌ the API did not start; see its log above.", file=sys.stderr)
                return 1
            self.children["listener"] = self._spawn("listener", env)
            self.console_note = self._start_console(env)
            self._banner(stack_env, env, admin)
            return self._supervise()
        finally:
            self._stop_all()

    def _stack_args(self) -> list[str]:
        args = ["--fresh"] if self.options.fresh else []
        if self.options.seed_file is not None:
            args += ["--seed", str(self.options.seed_file.resolve())]
        return args

    def _start_inbox(self, env: dict[str, str]) -> WebhookInbox | None:
        try:
            # The listener's signing secret, read as the listener reads it (the environment, then .env.local
            # and .env in this folder, which is the children's), with the stack's values it is given.
            settings = load_settings(
                supabase_url=env["SUPABASE_URL"],
                supabase_service_role_key=env["SUPABASE_SERVICE_ROLE_KEY"],
                secret_key=env["SECRET_KEY"],
            )
        except ConfigError as exc:
            print(f"❌ {exc.message}", file=sys.stderr)
            return None
        try:
            inbox = WebhookInbox(webhook_secret(settings), self.options.inbox_port)
        except OSError as exc:
            print(f"❌ the webhook inbox cannot listen on 127.0.0.1:{self.options.inbox_port} ({exc.strerror}): "
                  "pass --inbox-port", file=sys.stderr)  # fmt: skip
            return None
        inbox.start()
        return inbox

    def _child_env(self, stack_env: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        env.update(stack_env)
        env["API_PORT"] = str(self.options.api_port)
        # The stack's env file carries a SECRET_KEY; one exported by the user wins, as before.
        env["SECRET_KEY"] = os.environ.get("SECRET_KEY") or stack_env["SECRET_KEY"]
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _local_admin(self, env: dict[str, str]) -> LocalAdmin | None:
        from .config import load_settings
        from .errors import NeiromatriusError
        from .local_admin import ensure_local_admin

        try:
            settings = load_settings(
                _env_file=None, supabase_url=env["SUPABASE_URL"], secret_key=env["SECRET_KEY"],
                supabase_service_role_key=env["SUPABASE_SERVICE_ROLE_KEY"],
            )  # fmt: skip
            return asyncio.run(ensure_local_admin(settings, self.options.data_dir))
        except NeiromatriusError as exc:  # the rest still runs; only signing in is missing
            print(f"❌ could not create the local admin: {exc.message}", file=sys.stderr)
            return None

    def _spawn(self, command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        # Its own session: Ctrl-C reaches only this supervisor, which stops the children in order
        # (listener, API, then the stack they use) instead of all at once.
        return subprocess.Popen([sys.executable, "-m", "neiromatrius", command], env=env, start_new_session=True)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.options.api_port}"

    def _wait_for_api(self) -> bool:
        deadline = time.monotonic() + API_READY_TIMEOUT
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline and not self._stop.is_set():
                if self.children["api"].poll() is not None:
                    return False
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return True
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        return False

    def _banner(self, stack_env: dict[str, str], env: dict[str, str], admin: LocalAdmin | None) -> None:
        model = f"OpenAI {env.get('OPENAI_MODEL', 'gpt-4o-mini')}" if env.get("OPENAI_API_KEY") else "offline rules"
        if admin is not None:
            from .local_admin import CREDENTIALS_FILE

            kept = self.options.data_dir / CREDENTIALS_FILE
            sign_in = f"{admin.email} / {admin.password}   (an admin operator, Supabase Auth; kept in {kept})"
        else:
            sign_in = "(no local admin: see the error above)"
        print(
            "\nNeiromatrius is running locally.\n"
            f"  API        {self.api_url}   (GET /health, POST /api/messages/, GET /metrics)\n"
            f"  Listener   {_listener_status(env)}\n"
            f"  Supabase   {stack_env['SUPABASE_URL']}   (keys in {self.options.env_file})\n"
            f"{self.console_note}\n"
            f"  Sign in    {sign_in}\n"
            f"  Model      {model}"
            + ("" if env.get("OPENAI_API_KEY") else " (set OPENAI_API_KEY for OpenAI)")
            + "\n"
            + self._inbox_status()
            + "\nTry the checklist's request:\n"
            + CURL.format(api=self.api_url)
            + "\n"
            + self._inbox_lines()
            + "\nReady. Ctrl-C stops it.",
            flush=True,
        )

    def _inbox_status(self) -> str:
        if self.inbox is None:
            return ""
        return f"  Webhooks   {self.inbox.url}/webhook   (the local inbox: GET shows deliveries)\n"

    def _inbox_lines(self) -> str:
        if self.inbox is None:
            return ""
        hook = f"{self.inbox.url}/webhook"
        return (
            "\nOr watch the whole loop here: the reply is POSTed, signed, to the local webhook inbox\n"
            + INBOX_CURL.format(api=self.api_url, hook=hook)
            + f"\ncurl {hook}     # what arrived, newest first, each with its signature checked\n"
        )

    # The operator console (frontend/). It is optional: without Node, or if it stops, the rest runs on.
    console: subprocess.Popen[bytes] | None = None
    console_note = "  Console    not started"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{os.environ.get('FRONTEND_PORT') or CONSOLE_PORT}"

    def _start_console(self, env: dict[str, str]) -> str:
        from . import console

        try:
            built = console.is_built(console.frontend_dir())
        except console.ConsoleError as exc:
            return f"  Console    not started: {exc}"
        if not built:  # `make run` builds it first (make console); building here would hold up the banner
            return "  Console    not built for these sources: run `make console` (or `make run`), then start again"
        console_env = dict(env)
        console_env.setdefault("BACKEND_API_URL", self.api_url)
        self.console = self._spawn("console", console_env)
        if _wait_for(f"{self.console_url}/health", self.console, CONSOLE_READY_TIMEOUT, self._stop):
            return f"  Console    {self.console_url}   (sign in with the credentials above)"
        return f"  Console    did not start at {self.console_url}; see its log above (FRONTEND_PORT to move it)"

    def _supervise(self) -> int:
        while not self._stop.wait(0.5):
            for name, child in self.children.items():
                if child.poll() is not None:
                    print(f"❌ the {name} process exited ({child.returncode}); stopping.", file=sys.stderr)
                    return 1
        return 0

    def _stop_all(self) -> None:
        if self.console is not None and self.console.poll() is None:
            self.console.send_signal(signal.SIGTERM)
            try:
                self.console.wait(15)
            except subprocess.TimeoutExpired:
                self.console.kill()
                self.console.wait()
        for name in ("listener", "api"):
            child = self.children.get(name)
            if child is None or child.poll() is not None:
                continue
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self.inbox is not None:
            self.inbox.stop()
        self.stack.stop()


def _wait_for(url: str, child: subprocess.Popen[bytes], bound: float, stop: threading.Event) -> bool:
    deadline = time.monotonic() + bound
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline and not stop.is_set() and child.poll() is None:
            try:
                if client.get(url).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    return False


def _listener_status(env: dict[str, str]) -> str:
    port = env.get("LISTENER_METRICS_PORT", "9464")
    if port == "0":
        return "running (LISTENER_METRICS_PORT=0: no /metrics)"
    return f"http://{env.get('LISTENER_METRICS_HOST', '127.0.0.1')}:{port}/metrics   (and /health)"
