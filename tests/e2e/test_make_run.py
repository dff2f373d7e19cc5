"""``neiromatrius run`` (what ``make run`` starts): the stack, the API and the listener, and the curl it
prints answers the checklist's request with a classification and a response."""

from __future__ import annotations

import json
import signal
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from neiromatrius.devstack.process import free_port

READY_BOUND = 90.0


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def assert_the_local_admin_signs_in(output: str, data_dir: Path, env_file: Path) -> None:
    """The banner's credentials are the ones kept (0600) in the data folder, and they sign in as an admin."""
    kept = data_dir / "local_admin.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    admin = json.loads(kept.read_text(encoding="utf-8"))
    assert f"Sign in    {admin['email']} / {admin['password']}   (an admin operator" in output
    keys = dict(line.split("=", 1) for line in env_file.read_text(encoding="utf-8").splitlines() if "=" in line)
    url, anon = keys["SUPABASE_URL"], keys["SUPABASE_ANON_KEY"]
    session = httpx.post(f"{url}/auth/v1/token", params={"grant_type": "password"}, headers={"apikey": anon},
                         json={"email": admin["email"], "password": admin["password"]}, timeout=10)  # fmt: skip
    assert session.status_code == 200, session.text
    headers = {"apikey": anon, "Authorization": f"Bearer {session.json()['access_token']}"}
    assert httpx.post(f"{url}/rest/v1/rpc/is_admin", headers=headers, timeout=10).json() is True


@pytest.mark.local_only
def test_run_starts_everything_and_the_printed_curl_gets_an_answer(tmp_path: Path) -> None:
    ports = {"--port": free_port(), "--db-port": free_port(), "--api-port": free_port()}
    cmd = [sys.executable, "-m", "neiromatrius", "run", "--data-dir", str(tmp_path / "data"),
           "--env-file", str(tmp_path / "env.local")]  # fmt: skip
    for flag, port in ports.items():
        cmd += [flag, str(port)]
    metrics_port = free_port()  # not the default 9464: another listener on this machine may hold it
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1",
           "LISTENER_METRICS_PORT": str(metrics_port)}  # no keys, no other settings  # fmt: skip
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
        curl = output[output.index("curl -X POST") : output.index("\n\n", output.index("curl -X POST"))]
        assert f"http://127.0.0.1:{ports['--api-port']}/api/messages/" in curl
        assert "offline rules" in output

        answer = subprocess.run(["bash", "-c", curl + " --silent --show-error --max-time 30"], capture_output=True,
                                text=True, timeout=60, check=True)  # fmt: skip
        body = json.loads(answer.stdout)
        assert body["state"] == "answered", body
        assert body["classification"]["category"] == "greeting"
        assert body["classification"]["language"] == "ru"
        assert body["response"]
        assert body["model"].startswith("offline")
        listener = f"http://127.0.0.1:{metrics_port}"
        assert f"Listener   {listener}/metrics" in output
        assert httpx.get(f"{listener}/health", timeout=10).json()["status"] == "ok"
        finished = httpx.get(f"{listener}/metrics", timeout=10).text
        assert 'neiromatrius_messages_finished_total{category="greeting",state="answered"} 1.0' in finished
        assert_the_local_admin_signs_in(output, tmp_path / "data", tmp_path / "env.local")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        drainer.join(10)
        assert process.stdout is not None
        process.stdout.close()
    assert code == 0, "".join(lines[-40:])
    assert not any(port_open(port) for port in [*ports.values(), metrics_port])
