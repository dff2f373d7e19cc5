"""``neiromatrius run`` (what ``make run`` starts): the stack, the API, the listener and the webhook inbox; the
checklist's curl it prints gets a classification and a response, and the inbox curl's reply arrives signed."""

from __future__ import annotations

import base64
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
from standardwebhooks import Webhook

from neiromatrius_devstack.process import free_port, read_env_file

READY_BOUND = 90.0
ROOT = Path(__file__).resolve().parents[2]
# In the folder's .env, as a user may keep it: the listener signs with it and the inbox must check with it.
ENV_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"make-run-test-secret-32-bytes-ok").decode()


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
    ports = {"--port": free_port(), "--db-port": free_port(), "--api-port": free_port(), "--inbox-port": free_port()}
    cmd = [sys.executable, "-m", "neiromatrius", "run", "--data-dir", str(tmp_path / "data"),
           "--env-file", str(tmp_path / "env.local"), "--migrations", str(ROOT / "supabase" / "migrations"),
           "--seed", str(ROOT / "supabase" / "seed.sql")]  # fmt: skip
    for flag, port in ports.items():
        cmd += [flag, str(port)]
    (tmp_path / ".env").write_text(f"WEBHOOK_SECRET={ENV_WEBHOOK_SECRET}\n", encoding="utf-8")
    metrics_port = free_port()  # not the default 9464: another listener on this machine may hold it
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1",
           "LISTENER_METRICS_PORT": str(metrics_port)}  # no keys, no other settings  # fmt: skip
    process = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    ready = threading.Event()
    delivered = threading.Event()

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Ready."):
                ready.set()
            if line.startswith("📬 webhook inbox:"):
                delivered.set()
        ready.set()
        delivered.set()

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

        inbox = f"http://127.0.0.1:{ports['--inbox-port']}/webhook"
        start = output.index(f"X-Webhook-URL: {inbox}")
        inbox_curl = output[output.rindex("curl -X POST", 0, start) : output.index("\n\n", start)]
        inbox_curl = inbox_curl.split("\ncurl ")[0]  # the request, without the line that reads the inbox
        sent = subprocess.run(["bash", "-c", inbox_curl + " --silent --show-error --max-time 30"], capture_output=True,
                              text=True, timeout=60, check=True)  # fmt: skip
        reply = json.loads(sent.stdout)
        assert reply["state"] == "answered", reply
        assert f"curl {inbox}" in output and f"  Webhooks   {inbox}" in output
        assert delivered.wait(READY_BOUND) and process.poll() is None, "".join(lines[-40:])
        [arrived] = httpx.get(inbox, timeout=10).json()["deliveries"]
        assert arrived["signature"] == "valid", arrived
        assert arrived["webhook_id"] and arrived["event"]["type"] == "message.replied"
        assert arrived["event"]["data"]["message_id"] == reply["id"]
        assert arrived["event"]["data"]["response"] == reply["response"]
        # Signed with the .env's secret (what a receiver configured with it would check), byte for byte.
        body = json.dumps(arrived["event"], ensure_ascii=False, separators=(",", ":"))
        Webhook(ENV_WEBHOOK_SECRET).verify(body, arrived["headers"])

        stack = read_env_file(tmp_path / "env.local")  # the seed, loaded on this fresh stack
        key = {
            "apikey": stack["SUPABASE_SERVICE_ROLE_KEY"],
            "Authorization": f"Bearer {stack['SUPABASE_SERVICE_ROLE_KEY']}",
        }
        seeded = httpx.get(f"{stack['SUPABASE_URL']}/rest/v1/clients", params={"id": "like.demo_*"}, headers=key)
        assert sorted(row["id"] for row in seeded.json()) == ["demo_anna", "demo_emma", "demo_ivan", "demo_john"]
        assert any(line.startswith("📬 webhook inbox: message.replied") and "signature valid" in line for line in lines)

        # The inbox's origin is the only loopback address let through: another port on it is still refused.
        other = f"http://127.0.0.1:{ports['--port']}/webhook"
        refused = httpx.post(
            f"http://127.0.0.1:{ports['--api-port']}/api/messages/",
            headers={"X-Webhook-URL": other, "X-Platform": "test", "X-Chat-ID": "local-2"},
            json={"client_id": "local_client_001", "content": "Hello again"},
            timeout=30,
        )
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "X-Webhook-URL", refused.text
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        drainer.join(10)
        assert process.stdout is not None
        process.stdout.close()
    assert code == 0, "".join(lines[-40:])
    assert not any(port_open(port) for port in [*ports.values(), metrics_port])


@pytest.mark.local_only
def test_run_says_in_one_line_why_the_stack_did_not_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cmd = [sys.executable, "-m", "neiromatrius", "run", "--data-dir", str(tmp_path / "data"),
               "--env-file", str(tmp_path / "env.local"), "--db-port", str(taken.getsockname()[1]),
               "--port", str(free_port()), "--api-port", str(free_port()),
               "--inbox-port", str(free_port())]  # fmt: skip
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    first, hint = result.stderr.strip().splitlines()
    assert first.startswith("❌ the local stack did not start: pg_ctl failed"), result.stderr
    assert "--db-port" in hint and "Traceback" not in result.stderr
