"""supabase-js (the version the console pins in js/) against /auth/v1, REST and Realtime together.

Conformance: also runs against a real Supabase. The script is js/auth.mjs; it prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Stack

JS_DIR = Path(__file__).parent / "js"


@pytest.fixture(scope="module")
def node_project() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("Node.js and npm are needed for the supabase-js check (Node 20+)")
    if not (JS_DIR / "node_modules" / "@supabase" / "supabase-js").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, capture_output=True, timeout=300
        )
    return JS_DIR


async def _run(node_project: Path, stack: Stack, mark: str) -> dict[str, Any]:
    env = {
        **os.environ, "SUPABASE_URL": stack.url, "SUPABASE_ANON_KEY": stack.anon_key,
        "SUPABASE_SERVICE_KEY": stack.service_key, "MARK": mark,
    }  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        "node", "auth.mjs", cwd=node_project, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stdout.decode() + stderr.decode()
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return result


async def test_supabase_js_session_lifecycle(stack: Stack, node_project: Path) -> None:
    mark = uuid.uuid4().hex[:10]
    out = await _run(node_project, stack, mark)
    assert out["created"] == {"error": None, "otherError": None}
    assert out["signIn"]["error"] is None and out["signIn"]["sameUser"] is True
    assert out["getUser"] == {"error": None, "sameUser": True}
    assert out["read"] == {"inserts": [201, 201], "status": 200, "owners": [True]}, "RLS shows only the user's row"
    assert out["refresh"] == {"error": None, "rotated": True, "sameUser": True}
    assert out["realtime"]["statuses"] == ["SUBSCRIBED"]
    assert out["realtime"] == {**out["realtime"], "body": f"{mark}-live-own", "ownerIsUser": True, "type": "INSERT"}
    assert out["update"] == {"error": None}
    assert out["signOut"] == {"error": None, "session": None}
    assert out["reuse"] == {"code": "refresh_token_not_found", "status": 400}
    assert out["passwords"] == {"old": "invalid_credentials", "new": None}
