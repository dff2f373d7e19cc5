"""``neiromatrius console``: the operator console (frontend/, Next.js), built once and then served.

The build is skipped when the sources have not changed since the last one (a hash of them is kept in
``.next/neiromatrius-build``), so ``make run`` builds on the first start only. The server is Next's
standalone server (``output: 'standalone'``, the same one the container image runs; ``next start``
refuses that configuration); it logs ``✓ Ready in Xms``. It reads at run time: ``SUPABASE_URL`` and
``SUPABASE_ANON_KEY`` (handed to the browser too), ``BACKEND_API_URL`` (the Python API, server side),
``FRONTEND_PORT`` (default 3000) and ``FRONTEND_HOST`` (default 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

DEFAULT_PORT = 3000
BUILD_STAMP = ".next/neiromatrius-build"
INSTALL_STAMP = "node_modules/.neiromatrius-install"
#: What the build depends on; tests, node_modules and the build output are not part of it.
SOURCES = ("app", "components", "lib", "public", "proxy.ts", "next.config.ts", "tsconfig.json", "package.json",
           "package-lock.json")  # fmt: skip


class ConsoleError(Exception):
    """The console cannot be built or started (no Node/npm, a failed install or build)."""


def frontend_dir(start: Path | None = None) -> Path:
    """frontend/ of this checkout: next to the current folder's, else next to this package's source."""
    for root in (start or Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = root / "frontend"
        if (candidate / "package.json").is_file():
            return candidate
    raise ConsoleError("no frontend/ folder (with package.json) here or beside the installed package")


def sources_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        path = folder / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] if path.is_file() else []
        for file in files:
            digest.update(str(file.relative_to(folder)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def _npm(folder: Path, *args: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise ConsoleError("npm is not installed: the console needs Node.js 20.9+ and npm")
    env = {**os.environ, "NEXT_TELEMETRY_DISABLED": "1"}
    result = subprocess.run([npm, *args], cwd=folder, env=env, check=False)
    if result.returncode != 0:
        command = " ".join(args)
        raise ConsoleError(f"`npm {command}` failed in {folder} (exit {result.returncode}); see its output above")


def ensure_installed(folder: Path) -> bool:
    """``npm ci`` when node_modules does not match package-lock.json; returns whether it ran."""
    lock = hashlib.sha256((folder / "package-lock.json").read_bytes()).hexdigest()
    stamp = folder / INSTALL_STAMP
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == lock:
        return False
    _npm(folder, "ci", "--no-audit", "--no-fund")
    stamp.write_text(lock, encoding="utf-8")
    return True


def is_built(folder: Path) -> bool:
    """Whether the last build is of the current sources (and its packages are installed)."""
    lock = hashlib.sha256((folder / "package-lock.json").read_bytes()).hexdigest()
    stamps = (folder / INSTALL_STAMP, folder / BUILD_STAMP)
    if not all(stamp.is_file() for stamp in stamps) or stamps[0].read_text(encoding="utf-8") != lock:
        return False
    server = folder / ".next" / "standalone" / "server.js"
    return server.is_file() and stamps[1].read_text(encoding="utf-8") == sources_hash(folder)


def ensure_built(folder: Path) -> bool:
    """Build (``npm run build``) unless the sources are those of the last build; returns whether it built."""
    ensure_installed(folder)
    stamp = folder / BUILD_STAMP
    current = sources_hash(folder)
    server = folder / ".next" / "standalone" / "server.js"
    if server.is_file() and stamp.is_file() and stamp.read_text(encoding="utf-8") == current:
        return False
    print("console: building frontend/ (later starts reuse the build while its sources are unchanged)", flush=True)
    _npm(folder, "run", "build")
    # The standalone server serves the static assets from its own folder: copy them in, as Next's docs say.
    standalone = folder / ".next" / "standalone"
    shutil.copytree(folder / ".next" / "static", standalone / ".next" / "static", dirs_exist_ok=True)
    if (folder / "public").is_dir():
        shutil.copytree(folder / "public", standalone / "public", dirs_exist_ok=True)
    stamp.write_text(current, encoding="utf-8")
    return True


def server_env(env: dict[str, str]) -> dict[str, str]:
    """The standalone server's environment: PORT and HOSTNAME are what it reads."""
    out = dict(env)
    out["PORT"] = env.get("FRONTEND_PORT") or str(DEFAULT_PORT)
    out["HOSTNAME"] = env.get("FRONTEND_HOST") or "127.0.0.1"
    out["NEXT_TELEMETRY_DISABLED"] = "1"
    out.setdefault("NODE_ENV", "production")
    return out


def missing_settings(env: dict[str, str]) -> list[str]:
    return [name for name in ("SUPABASE_URL", "SUPABASE_ANON_KEY") if not env.get(name)]


def run(build_only: bool = False) -> int:
    """Build if needed, then replace this process with the console's server (signals reach it directly)."""
    env = dict(os.environ)
    try:
        folder = frontend_dir()
        ensure_built(folder)
    except ConsoleError as exc:
        print(f"❌ console: {exc}", file=sys.stderr)
        return 1
    if build_only:
        return 0
    missing = missing_settings(env)
    if missing:
        print(f"❌ console: {', '.join(missing)} must be set (the Supabase the console signs in to)", file=sys.stderr)
        return 2
    node = shutil.which("node")
    if node is None:
        print("❌ console: node is not installed (Node.js 20.9+)", file=sys.stderr)
        return 1
    standalone = folder / ".next" / "standalone"
    sys.stdout.flush()
    os.chdir(standalone)
    os.execve(node, [node, "server.js"], server_env(env))
