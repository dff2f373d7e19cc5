"""The console's lines of the checklist: its two variables before deploy, its health after.

``NEXT_PUBLIC_API_URL`` is the browser's base for the Python API (inlined when the console is built;
``/api``, the console's own pass-through, by default) and ``BACKEND_API_URL`` is where the console's
server reaches the API (read at run time). Neither is a backend setting: they are read here from the
environment over the env file, and checked only when one of them is set (a deployment without the
console is a choice). After deploy, ``--console-url`` asks the console's ``/health``, which also says
whether the console reaches the API through BACKEND_API_URL, and its sign-in page.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from dotenv import dotenv_values

from .model import Check

VARIABLES = ("NEXT_PUBLIC_API_URL", "BACKEND_API_URL")
DEFAULT_API_BASE = "/api"
_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")


def read(env_files: list[Path], environ: dict[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for env_file in env_files:  # later files over earlier, as Settings reads them
        values.update({k: v for k, v in dotenv_values(env_file).items() if k in VARIABLES and v})
    values.update({k: v for k, v in environ.items() if k in VARIABLES and v})
    return values


def settings(values: dict[str, str]) -> list[Check]:
    if not any(values.get(name) for name in VARIABLES):
        return []
    return [_api_base(values.get("NEXT_PUBLIC_API_URL")), _backend(values.get("BACKEND_API_URL"))]


def _api_base(value: str | None) -> Check:
    name = "NEXT_PUBLIC_API_URL"
    if not value:
        detail = f"unset: the browser uses {DEFAULT_API_BASE} (the console passes it to the API)"
        return Check.passed(name, detail, name)
    if value.startswith("/") and not value.startswith("//"):
        if _PATH.fullmatch(value):
            return Check.passed(name, f"{value} (a path on the console, passed to BACKEND_API_URL)", name)
        return Check.failed(name, "is not a plain path", "use /api (the default) or the API's public https URL", name)
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc and not parts.query and not parts.fragment:
        note = "" if parts.scheme == "https" else "; browsers on https pages refuse http calls"
        return Check.passed(name, f"the API's public URL (the browser calls it directly{note})", name)
    return Check.failed(name, f"{value!r} is neither a path nor an http(s) URL", "usually /api", name)


def _backend(value: str | None) -> Check:
    name = "BACKEND_API_URL"
    if not value:
        return Check.failed(
            name, "unset: the console's server cannot reach the API", "e.g. http://neiromatrius-api:8000", name
        )
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        return Check.failed(name, "is not an http(s) URL", "the API's base, e.g. http://neiromatrius-api:8000", name)
    if parts.path.rstrip("/").endswith("/api"):
        return Check.failed(
            name, "ends in /api: the console adds /api/… itself", "give the API's root, e.g. http://host:8000", name
        )
    return Check.passed(name, "an http(s) URL (the API's root, reached by the console's server)", name)


async def health(http: httpx.AsyncClient, base: str) -> list[Check]:
    """The console's /health (it reports whether it reaches the API) and its sign-in page."""
    found = []
    try:
        response = await http.get(f"{base}/health")
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else None
    except httpx.HTTPError as exc:
        fix = "check that the console runs and that --console-url is its public address"
        return [Check.failed("Console /health", f"no answer from {base} ({type(exc).__name__})", fix)]
    if response.status_code != 200 or not isinstance(body, dict) or body.get("status") != "ok":
        fix = "read the console's log (SUPABASE_URL and SUPABASE_ANON_KEY must be set)"
        found.append(Check.failed("Console /health", f"answered {response.status_code} {response.text[:120]}", fix))
    elif body.get("backend") != "ok":
        found.append(
            Check.failed(
                "Console /health",
                f"the console does not reach the API (backend: {body.get('backend')})",
                "set BACKEND_API_URL on the console to the API's address on the shared network",
                "BACKEND_API_URL",
            )
        )
    else:
        found.append(Check.passed("Console /health", "answers status ok, backend ok (BACKEND_API_URL reaches the API)"))
    try:
        page = await http.get(f"{base}/login")
    except httpx.HTTPError as exc:
        return [*found, Check.failed("Console sign-in", f"no answer ({type(exc).__name__})", "see Console /health")]
    if page.status_code == 200 and 'id="password"' in page.text:
        found.append(Check.passed("Console sign-in", "the sign-in page renders"))
    else:
        fix = "read the console's log: SUPABASE_URL and SUPABASE_ANON_KEY (run time) must be set"
        found.append(Check.failed("Console sign-in", f"answered {page.status_code}", fix))
    return found
