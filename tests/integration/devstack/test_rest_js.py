"""supabase-js (Node) against the REST API: its header conventions differ from supabase-py's.

supabase-js sends ``Accept-Profile`` only on reads and ``Content-Profile`` only on writes, asks
for ``return=minimal`` on RPCs and reads counts from HEAD requests. The script runs from the
pinned ``js/`` project (see test_realtime_js.py) and prints one JSON object with its results.
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

SCRIPT = r"""
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';  // Node 20 has no global WebSocket, and supabase-js builds a Realtime client
const env = process.env, mark = env.MARK, item = Number(env.ITEM);
const opts = { auth: { persistSession: false, autoRefreshToken: false }, realtime: { transport: WebSocket } };
const admin = createClient(env.SUPABASE_URL, env.SERVICE_KEY, opts);
const asUser = { ...opts, global: { headers: { Authorization: `Bearer ${env.USER_TOKEN}` } } };
const user = createClient(env.SUPABASE_URL, env.ANON_KEY, asUser);
const todos = () => admin.from('rest_todos');
const out = {};
const ins = await todos().insert([{ title: 'a', batch: mark }, { title: 'b', batch: mark }]).select('id,title');
out.inserted = ins.data?.map(r => r.title);
const head = await todos().select('*', { count: 'exact', head: true }).eq('batch', mark);
out.count = head.count; out.headStatus = head.status;
const upd = await todos().update({ done: true }).eq('batch', mark).eq('title', 'a').select('title,done').single();
out.updated = upd.data;
out.maybe = (await todos().select('title').eq('batch', mark).eq('title', 'zzz').maybeSingle()).data;
out.singleError = (await todos().select('title').eq('batch', mark).single()).error?.code;
out.rpc = (await admin.rpc('rest_add', { a: 20, b: 22 })).data;
out.firstStatus = (await admin.from('rest_items').insert({ id: item, name: 'x' })).status;
const dup = await admin.from('rest_items').insert({ id: item, name: 'y' });
out.dupStatus = dup.status; out.dupCode = dup.error?.code;
out.noteOwner = (await user.from('rest_notes').insert({ body: mark }).select('owner').single()).data?.owner;
out.notes = (await user.from('rest_notes').select('body').eq('body', mark)).data?.length;
out.deleteStatus = (await todos().delete().eq('batch', mark)).status;
console.log(JSON.stringify(out));
process.exit(0);
"""


@pytest.fixture(scope="module")
def node_project() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("Node.js and npm are needed for the supabase-js check (Node 20+)")
    if not (JS_DIR / "node_modules" / "@supabase" / "supabase-js").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, capture_output=True, timeout=300
        )
    return JS_DIR


async def _run(node_project: Path, env: dict[str, str]) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        "node", "--input-type=module", "-e", SCRIPT,
        cwd=node_project, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return result


async def test_supabase_js_reads_writes_and_calls(stack: Stack, node_project: Path) -> None:
    sub = str(uuid.uuid4())
    env = {
        "SUPABASE_URL": stack.url,
        "SERVICE_KEY": stack.service_key,
        "ANON_KEY": stack.anon_key,
        "USER_TOKEN": stack.user_token(sub),
        "MARK": f"js-{uuid.uuid4()}",
        "ITEM": str(uuid.uuid4().int % 2_000_000_000),
    }
    out = await _run(node_project, env)
    assert out == {
        "inserted": ["a", "b"],
        "count": 2,
        "headStatus": 200,
        "updated": {"title": "a", "done": True},
        "maybe": None,
        "singleError": "PGRST116",
        "rpc": 42,
        "dupStatus": 409,
        "dupCode": "23505",
        "firstStatus": 201,
        "noteOwner": sub,
        "notes": 1,
        "deleteStatus": 204,
    }
