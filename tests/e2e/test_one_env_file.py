"""One env file: ``neiromatrius devstack`` writes ``.env.local`` with everything the service needs (a SECRET_KEY
included, the same across restarts), and ``api``, ``listener`` and ``check`` started beside it read it as it is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from neiromatrius_devstack.process import DevstackProcess, free_port, read_env_file

from .conftest import ServiceProcess

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "supabase" / "migrations"


def bare_env(**extra: str) -> dict[str, str]:
    """The user's shell: no Supabase, OpenAI or service settings exported."""
    names = ("SUPABASE_", "OPENAI_", "DATABASE_URL", "SECRET_KEY", "WEBHOOK_", "REDIS_URL", "ALLOW_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(names)}
    return env | {"PYTHONUNBUFFERED": "1", "LISTENER_METRICS_PORT": "0"} | extra


@pytest.mark.local_only
@pytest.mark.timeout(240)
def test_devstack_then_api_listener_and_check_work_with_no_copying(tmp_path: Path) -> None:
    stack = DevstackProcess(tmp_path / ".devstack", migrations_dir=MIGRATIONS, env_path=tmp_path / ".env.local")
    written = stack.start()
    services: list[ServiceProcess] = []
    try:
        assert len(written["SECRET_KEY"]) >= 32
        api_port = free_port()
        api = ServiceProcess("api", bare_env(API_PORT=str(api_port)), tmp_path)
        services.append(api)
        api.wait_for_line("Starting up application...")
        services.append(ServiceProcess("listener", bare_env(), tmp_path))
        services[-1].wait_for_line("consumers")

        answer = httpx.post(
            f"http://127.0.0.1:{api_port}/api/messages/",
            headers={"X-Webhook-URL": "https://test-webhook.com/test", "X-Platform": "test", "X-Chat-ID": "env-1"},
            json={"client_id": "env_client", "content": "Hello! How are you?"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == "answered"

        # The operator CLI reads the same file (and check wants an active admin).
        subprocess.run(
            [sys.executable, "-m", "neiromatrius", "operator", "add", "admin@env.test", "--role", "admin"],
            cwd=tmp_path, env=bare_env(), input="a-long-enough-password\n", capture_output=True, text=True,
            timeout=120, check=True,
        )  # fmt: skip
        check = subprocess.run(
            [sys.executable, "-m", "neiromatrius", "check", "--json", "--migrations", str(MIGRATIONS)],
            cwd=tmp_path, env=bare_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        report = json.loads(check.stdout)
        assert check.returncode == 0 and report["ok"], check.stdout + check.stderr
        assert {"SUPABASE_URL", "SECRET_KEY", "DATABASE_URL"} <= {c["variable"] for c in report["checks"]}
    finally:
        for service in services:
            service.stop()
        stack.stop()

    restarted = stack.start()
    try:
        assert restarted["SECRET_KEY"] == written["SECRET_KEY"], "webhook signatures must survive a restart"
    finally:
        stack.stop()
    assert read_env_file(tmp_path / ".env.local")["SECRET_KEY"] == written["SECRET_KEY"]
