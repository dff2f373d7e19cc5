"""``make run`` starts the operator console too: the banner prints its URL, Next logs ``✓ Ready in Xms``,
the console answers on it (its health, and the sign-in page for a person), and it stops with the rest."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from neiromatrius import console
from neiromatrius_devstack.process import free_port
from tests.e2e.test_make_run import READY_BOUND, assert_the_local_admin_signs_in, port_open

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.local_only
@pytest.mark.timeout(600)
def test_run_serves_the_console_and_prints_its_url(tmp_path: Path) -> None:
    console.ensure_built(ROOT / "frontend")  # what `make run` does first (make console)
    ports = {"--port": free_port(), "--db-port": free_port(), "--api-port": free_port()}
    frontend_port = free_port()
    cmd = [sys.executable, "-m", "neiromatrius", "run", "--data-dir", str(tmp_path / "data"),
           "--env-file", str(tmp_path / "env.local")]  # fmt: skip
    for flag, port in ports.items():
        cmd += [flag, str(port)]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1", "LISTENER_METRICS_PORT": "0",
           "FRONTEND_PORT": str(frontend_port)}  # fmt: skip
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    ready = threading.Event()

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Ready."):
                ready.set()
        ready.set()

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    try:
        assert ready.wait(READY_BOUND) and process.poll() is None, "".join(lines[-60:])
        output = "".join(lines)
        url = f"http://127.0.0.1:{frontend_port}"
        assert f"  Console    {url}   (sign in with the credentials above)" in output, output
        assert any(line.strip().startswith("✓ Ready in") for line in lines), output  # the checklist's line
        health = httpx.get(f"{url}/health", timeout=10)
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "backend": "ok"}  # BACKEND_API_URL: the API make run started
        page = httpx.get(f"{url}/inbox", timeout=10, follow_redirects=True)
        assert page.status_code == 200 and str(page.url).endswith("/login?next=%2Finbox")
        assert 'id="email"' in page.text and 'id="password"' in page.text
        assert_the_local_admin_signs_in(output, tmp_path / "data", tmp_path / "env.local")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        drainer.join(10)
        assert process.stdout is not None
        process.stdout.close()
    assert code == 0, "".join(lines[-40:])
    assert not port_open(frontend_port)
