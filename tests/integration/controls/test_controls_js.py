"""supabase-js (Node) as an operator's console would use it: the operator's token calls take_over,
send_reply and add_note, gets a clean error for bad input, and sees the conversation's controls, the
reply and the note arrive over Realtime (postgres_changes under RLS). Runs from the pinned devstack js/ project."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import Stack

from .conftest import Pipeline, SignedIn

JS_DIR = Path(__file__).parents[1] / "devstack" / "js"

SCRIPT = r"""
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';  // Node 20 has no global WebSocket
const env = process.env, conversation = env.CONVERSATION;
const print = (value) => process.stdout.write(JSON.stringify(value) + '\n');
const deadline = setTimeout(() => { print({ error: 'timed out', events }); process.exit(2); }, 30000);
const client = createClient(env.SUPABASE_URL, env.ANON_KEY, {
  auth: { persistSession: false, autoRefreshToken: false },
  global: { headers: { Authorization: `Bearer ${env.USER_TOKEN}` } },
  realtime: { transport: WebSocket },
});
await client.realtime.setAuth(env.USER_TOKEN);
const events = [];
const byId = `id=eq.${conversation}`, byConversation = `conversation_id=eq.${conversation}`;
let seenOff, seenNote, seenReply;
const replied = new Promise((resolve) => { seenReply = resolve; });
const off = new Promise((resolve) => { seenOff = resolve; });
const noted = new Promise((resolve) => { seenNote = resolve; });
await new Promise((resolve) => {
  client.channel(`controls-${conversation}`)
    .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'conversations', filter: byId }, (p) => {
      events.push(['conversations', p.new.bot_mode, p.new.assignee_id]);
      if (p.new.bot_mode === 'off') seenOff();
    })
    .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'replies', filter: byConversation }, (p) => {
      events.push(['replies', p.new.kind, p.new.content, p.new.delivery_state]);
      seenReply();
    })
    .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'notes', filter: byConversation }, (p) => {
      events.push(['notes', p.new.body]);
      seenNote();
    })
    .on('system', {}, (p) => { if (p.message === 'Subscribed to PostgreSQL') resolve(); })
    .subscribe();
});
const taken = await client.rpc('take_over', { p_conversation_id: conversation });
const sent = await client.rpc('send_reply', { p_conversation_id: conversation, p_content: 'Hello from the console',
                                              p_client_request_id: 'js-1' });
const retried = await client.rpc('send_reply', { p_conversation_id: conversation, p_content: 'Hello from the console',
                                                 p_client_request_id: 'js-1' });
const note = await client.rpc('add_note', { p_conversation_id: conversation, p_body: 'Seen in the console' });
const bad = await client.rpc('send_reply', { p_conversation_id: conversation, p_content: '' });
await Promise.all([off, noted, replied]);
print({
  taken: { status: taken.status, bot_mode: taken.data?.bot_mode, assignee: taken.data?.assignee_id },
  sent: { status: sent.status, created: sent.data?.created, reply: sent.data?.reply_id },
  retried: { created: retried.data?.created, reply: retried.data?.reply_id },
  note: { status: note.status, created: note.data?.created },
  bad: { status: bad.status, code: bad.error?.code, message: bad.error?.message },
  events,
});
clearTimeout(deadline);
await client.removeAllChannels();
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


async def run_script(node_project: Path, env: dict[str, str]) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        "node", "--input-type=module", "-e", SCRIPT,
        cwd=node_project, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, (stdout.decode(), stderr.decode())
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return result


async def test_an_operator_console_acts_through_supabase_js_and_sees_it_in_realtime(
    stack: Stack, node_project: Path, pipeline: Pipeline, agent: SignedIn, db: asyncpg.Connection
) -> None:
    conversation, message = await pipeline.intake("Can a person help me?")
    env = {"SUPABASE_URL": stack.url, "ANON_KEY": stack.anon_key, "USER_TOKEN": stack.user_token(sub=agent.id),
           "CONVERSATION": conversation}  # fmt: skip

    out = await run_script(node_project, env)

    assert out["taken"] == {"status": 200, "bot_mode": "off", "assignee": agent.id}
    assert (out["sent"]["status"], out["sent"]["created"]) == (200, True)
    assert out["retried"] == {"created": False, "reply": out["sent"]["reply"]}
    assert out["note"] == {"status": 200, "created": True}
    assert out["bad"] == {"status": 400, "code": "22023", "message": "send_reply: p_content must not be empty"}
    assert ["conversations", "off", agent.id] in out["events"]
    assert ["notes", "Seen in the console"] in out["events"]
    assert ["replies", "operator", "Hello from the console", "pending"] in out["events"]
    reply = await db.fetchrow("select kind, author_id::text, delivery_state from public.replies where id = $1",
                              out["sent"]["reply"])  # fmt: skip
    assert reply is not None and tuple(reply) == ("operator", agent.id, "pending")
    state = await db.fetchval("select state from public.messages where id = $1", message)
    assert state == "answered"
