"""supabase-js from npm (Node, Realtime protocol vsn 2.0.0): an INSERT through postgres_changes, a broadcast.

``js/`` pins supabase-js and ``ws`` with a lockfile; the packages are installed on first use.
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

import asyncpg
import pytest

from tests.conftest import Stack

JS_DIR = Path(__file__).parent / "js"
WAIT = 30.0


@pytest.fixture(scope="module")
def node_project() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("Node.js and npm are needed for the supabase-js check (Node 20+)")
    if not (JS_DIR / "node_modules" / "@supabase" / "supabase-js").is_dir():
        command = ["npm", "ci"] if (JS_DIR / "package-lock.json").exists() else ["npm", "install"]
        subprocess.run([*command, "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, capture_output=True, timeout=300)
    return JS_DIR


async def _line(stream: asyncio.StreamReader) -> dict[str, Any]:
    raw = await asyncio.wait_for(stream.readline(), WAIT)
    assert raw, "the script ended without output"
    result: dict[str, Any] = json.loads(raw)
    assert "error" not in result, result
    return result


async def test_supabase_js_receives_an_insert(stack: Stack, node_project: Path) -> None:
    label = f"js-{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "SUPABASE_URL": stack.url, "SUPABASE_ANON_KEY": stack.anon_key, "RT_LABEL": label}
    process = await asyncio.create_subprocess_exec(
        "node", "script.mjs", cwd=node_project, env=env, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        assert await _line(process.stdout) == {"ready": True}
        conn = await asyncpg.connect(stack.database_url)
        try:
            row = await conn.fetchval("insert into rt_items (label, qty) values ($1, 42) returning id", label)
        finally:
            await conn.close()
        result = await _line(process.stdout)
        assert await asyncio.wait_for(process.wait(), WAIT) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert result["select"] == {"status": 200, "error": None, "isArray": True}
    assert result["statuses"] == ["SUBSCRIBED"]
    assert result["vsn"] == "2.0.0"
    event = result["event"]
    assert (event["eventType"], event["schema"], event["table"]) == ("INSERT", "public", "rt_items")
    assert event["new"]["id"] == row and event["new"]["label"] == label and event["new"]["qty"] == 42
    assert event["old"] == {} and event["errors"] is None
    assert result["broadcast"]["sent"] == "ok"
    assert result["broadcast"]["received"] == {"type": "broadcast", "event": "hello", "payload": {"text": "привет"}}
