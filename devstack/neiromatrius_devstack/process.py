"""Run ``neiromatrius devstack`` as a child process (for ``neiromatrius run``, tests and benchmarks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key] = value
    return values


@dataclass
class DevstackProcess:
    data_dir: Path
    migrations_dir: Path = Path("supabase/migrations")
    port: int = field(default_factory=free_port)
    db_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    env_path: Path | None = None  # where to write URL and keys; next to the data folder by default
    own_session: bool = False  # True: a terminal's Ctrl-C reaches only the parent, which stops it in turn
    output: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None
    _drainer: threading.Thread = field(init=False, repr=False)
    _saw_ready: bool = field(init=False, default=False, repr=False)

    @property
    def env_file(self) -> Path:
        return self.env_path or self.data_dir.parent / f"{self.data_dir.name}.env"

    def start(self, *extra: str) -> dict[str, str]:
        """Start the stack, wait for its ready line, and return the env file it wrote."""
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SUPABASE_URL")}
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        cmd = [
            sys.executable, "-m", "neiromatrius", "devstack",
            "--port", str(self.port), "--db-port", str(self.db_port),
            "--data-dir", str(self.data_dir), "--env-file", str(self.env_file),
            "--migrations", str(self.migrations_dir), *extra,
        ]  # fmt: skip
        self.output = []
        self.process = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=self.own_session,
        )
        ready = threading.Event()
        self._saw_ready = False
        self._drainer = threading.Thread(target=self._drain, args=(self.process, ready), daemon=True)
        self._drainer.start()
        # EOF sets the event too: only the ready line itself means the stack is up (the process may not
        # have been reaped yet when its output ends, so poll() alone can miss a failed start).
        if not ready.wait(READY_TIMEOUT) or not self._saw_ready or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("devstack did not become ready:\n" + "".join(self.output[-40:]))
        return read_env_file(self.env_file)

    def _drain(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)
            if line.startswith("Ready."):
                self._saw_ready = True
                ready.set()
        ready.set()  # the process ended: let start() see it at once

    def stop(self) -> int | None:
        """SIGTERM, as a supervisor would; return the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self._drainer.join(10)  # it ends at EOF, now that the process has exited
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None
        return code
