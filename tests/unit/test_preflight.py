"""scripts/preflight: what `make run` and `make test` need from the machine, one clear line when a piece is missing.

Each case runs the real script with PATH holding only the tools the case gives it (small stand-ins that print a
version), so the machine's own Node, Redis or apt-get cannot hide a missing piece.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "preflight"
BASH = shutil.which("bash") or "/bin/bash"


def tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def machine(tmp_path: Path, *, node: str | None = "v20.11.1", npm: bool = True, redis: bool = True) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    os.symlink(sys.executable, folder / "python3")  # this interpreter: 3.11+, with venv
    os.symlink(shutil.which("id") or "/usr/bin/id", folder / "id")
    if node is not None:
        tool(folder, "node", f"echo {node}")
    if npm:
        tool(folder, "npm", "exit 0")
    if redis:
        tool(folder, "redis-server", "echo 'Redis server v=7.0.15'")
    return folder


def preflight(folder: Path, what: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": str(folder), "VENV": str(folder.parent / "no-venv"), "HOME": str(folder.parent), **env}
    return subprocess.run([BASH, str(SCRIPT), what], env=environment, capture_output=True, text=True, timeout=30)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("what", ["run", "test"])
def test_a_machine_with_everything_passes_quietly(tmp_path: Path, what: str) -> None:
    result = preflight(machine(tmp_path), what)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_run_needs_no_node_npm_or_redis(tmp_path: Path) -> None:
    result = preflight(machine(tmp_path, node=None, npm=False, redis=False), "run")
    assert result.returncode == 0, result.stderr


def test_an_old_python_is_named(tmp_path: Path) -> None:
    folder = machine(tmp_path)
    tool(folder, "python3.10", 'case "$*" in *version_info*) exit 1;; *python_version*) echo 3.10.12;; esac')
    line = one_line(preflight(folder, "run", PYTHON="python3.10"))
    assert line.startswith("❌ make run needs Python 3.11+ (python3.10 is 3.10.12)")


def test_a_missing_python_is_named(tmp_path: Path) -> None:
    line = one_line(preflight(machine(tmp_path), "run", PYTHON="python3.12"))
    assert "Python 3.11+ (python3.12 is not on PATH)" in line


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"node": None}, "❌ make test needs Node 20+ (node is not on PATH)"),
        ({"node": "v18.19.0"}, "❌ make test needs Node 20+ (node is v18.19.0)"),
        ({"npm": False}, "❌ make test needs npm (not on PATH)"),
    ],
)
def test_test_names_a_missing_or_old_node_and_npm(tmp_path: Path, changes: dict[str, object], expected: str) -> None:
    line = one_line(preflight(machine(tmp_path, **changes), "test"))  # type: ignore[arg-type]
    assert line.startswith(expected), line


def test_test_without_redis_or_a_way_to_fetch_it_says_how_to_get_it(tmp_path: Path) -> None:
    line = one_line(preflight(machine(tmp_path, redis=False), "test"))  # no apt-get on this PATH
    assert line.startswith("❌ make test needs redis-server")
    assert "apt-get install redis-server" in line


def test_a_redis_in_the_venv_is_enough(tmp_path: Path) -> None:
    folder = machine(tmp_path, redis=False)
    venv_bin = tmp_path / "no-venv" / "bin"
    venv_bin.mkdir(parents=True)
    tool(venv_bin, "redis-server", "exit 0")
    assert preflight(folder, "test").returncode == 0


def test_the_makefile_runs_it_before_anything_else() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "\nrun: preflight-run " in makefile
    assert "\ntest: preflight-test " in makefile
