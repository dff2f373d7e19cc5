"""A real redis-server on a free loopback port, with no persistence, that a test may kill and restart."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from neiromatrius_devstack.process import free_port
from tests.support.waiting import blocking_eventually

READY_BOUND = 10.0


def redis_binary() -> str:
    """The redis-server that `make test` installs into the venv (scripts/install-redis), or one on PATH."""
    beside = Path(sys.executable).parent / "redis-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server in the venv or on PATH: run scripts/install-redis (make test does)")
    return found


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [redis_binary(), "--save", "", "--appendonly", "no", "--port", str(self.port),
                   "--bind", "127.0.0.1", "--dir", str(self.workdir)]  # fmt: skip
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self._wait_for_pong()

    def kill(self) -> None:
        """SIGKILL: no goodbye to clients, as when a host or container dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()  # the same port: clients configured with the URL find it again

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def _wait_for_pong(self) -> None:
        def answers() -> bool:  # a starting server has no event to wait on: poll it, with a bound
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited ({self.process.returncode}):\n{log}")
            return _pong(self.port)

        try:
            blocking_eventually(answers, READY_BOUND, every=0.02)
        except TimeoutError:
            raise TimeoutError(f"redis-server did not answer PING within {READY_BOUND}s") from None


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False
