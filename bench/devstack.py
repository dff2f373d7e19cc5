"""Benchmark the local stack against baselines measured in the same run.

REST: insert requests/s through ``POST /rest/v1/bench_items`` (supabase-py's request shape) beside
a bare Starlette endpoint doing one asyncpg INSERT on the same database. Realtime: commit-to-event
latency for 1 and 50 subscribers beside Postgres LISTEN/NOTIFY commit-to-callback latency.
Baseline and ours alternate; each figure is the median of 3 rounds. Prints a table and appends it
to ``bench/RESULTS.md`` with the machine's description.

    .venv/bin/python bench/devstack.py [--seconds 5] [--connections 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg
import websockets

from common import (
    BENCH_ITEMS_SQL,
    HERE,
    alternate,
    hammer,
    listening,
    load_note,
    machine,
    percentile,
    publish,
    section,
    table,
    until,
)
from neiromatrius_devstack.process import DevstackProcess, free_port


def _note(n: int, i: int) -> tuple[dict[str, str], bytes]:
    return {}, json.dumps({"note": f"c{n}-{i}"}).encode()


async def realtime_latency(stack: dict[str, str], dsn: str, subscribers: int, events: int) -> list[float]:
    """Milliseconds from an INSERT's commit to each subscriber's postgres_changes frame."""
    ws_url = stack["SUPABASE_URL"].replace("http", "ws", 1) + "/realtime/v1/websocket"
    key = stack["SUPABASE_SERVICE_ROLE_KEY"]
    received: dict[int, list[float]] = {}
    sockets = []
    for _ in range(subscribers):
        ws = await websockets.connect(f"{ws_url}?apikey={key}&vsn=1.0.0", max_size=None)
        config = {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": "bench_items"}]}
        await ws.send(json.dumps({"topic": "realtime:bench", "event": "phx_join", "ref": "1", "join_ref": "1",
                                  "payload": {"config": config, "access_token": key}}))  # fmt: skip
        while json.loads(await ws.recv()).get("event") != "system":
            pass
        sockets.append(ws)

    async def reader(ws: websockets.ClientConnection) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame["event"] == "postgres_changes":
                received.setdefault(frame["payload"]["data"]["record"]["id"], []).append(time.perf_counter())

    readers = [asyncio.create_task(reader(ws)) for ws in sockets]
    latencies: list[float] = []
    conn = await asyncpg.connect(dsn)
    try:
        for i in range(events):
            sent = time.perf_counter()
            row_id = await conn.fetchval("insert into public.bench_items(note) values ($1) returning id", f"rt{i}")
            await until(lambda row_id=row_id: len(received.get(row_id, [])) >= subscribers, 5.0)
            latencies += [(t - sent) * 1000 for t in received.pop(row_id)]
    finally:
        await conn.close()
        for task in readers:
            task.cancel()
        for ws in sockets:
            await ws.close()
    return latencies


async def notify_latency(dsn: str, listeners: int, events: int) -> list[float]:
    """The baseline: commit-to-callback of LISTEN/NOTIFY, Postgres's own push, with as many listeners."""
    arrivals: dict[str, list[float]] = {}

    def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        arrivals.setdefault(payload, []).append(time.perf_counter())

    conns = [await asyncpg.connect(dsn) for _ in range(listeners)]
    for conn in conns:
        await conn.add_listener("bench", on_notify)
    sender = await asyncpg.connect(dsn)
    latencies: list[float] = []
    try:
        for i in range(events):
            sent = time.perf_counter()
            await sender.execute(
                "with i as (insert into public.bench_items(note) values ('n') returning id) "
                f"select pg_notify('bench', '{i}') from i"
            )
            await until(lambda i=i: len(arrivals.get(str(i), [])) >= listeners, 5.0)
            latencies += [(t - sent) * 1000 for t in arrivals.pop(str(i))]
    finally:
        for conn in [*conns, sender]:
            await conn.close()
    return latencies


async def run(args: argparse.Namespace) -> list[tuple[str, str, str, str]]:
    data = Path(tempfile.mkdtemp(prefix="bench-devstack-"))
    stack = DevstackProcess(data / "data", migrations_dir=data / "none")
    env = stack.start()
    baseline_proc = None
    try:
        dsn = env["DATABASE_URL"].replace("+asyncpg", "", 1)
        conn = await asyncpg.connect(dsn)
        await conn.execute(BENCH_ITEMS_SQL)
        await conn.close()
        await _exposed(env)
        port = free_port()
        baseline_proc = await asyncio.create_subprocess_exec(
            sys.executable, str(HERE / "baseline_insert.py"), dsn, str(port)
        )
        await listening(port)
        key = env["SUPABASE_SERVICE_ROLE_KEY"]
        rest_headers = {
            "apikey": key,
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Prefer": "return=representation",
            "Accept-Profile": "public",
            "Content-Profile": "public",
        }

        def rest_note(n: int, i: int) -> tuple[dict[str, str], bytes]:
            return rest_headers, _note(n, i)[1]

        def bare_note(n: int, i: int) -> tuple[dict[str, str], bytes]:
            return {"Content-Type": "application/json"}, _note(n, i)[1]

        base, ours = await alternate(
            3,
            lambda: hammer(f"http://127.0.0.1:{port}/insert", bare_note, args.seconds, args.connections, 201),
            lambda: hammer(
                f"{env['SUPABASE_URL']}/rest/v1/bench_items", rest_note, args.seconds, args.connections, 201
            ),
        )
        rows = [("REST insert req/s", f"{base:.0f}", f"{ours:.0f}", f"{ours / base:.0%}")]
        for subscribers in (1, 50):
            base_lat: list[float] = []
            ours_lat: list[float] = []
            for _ in range(3):
                base_lat += await notify_latency(dsn, subscribers, args.events)
                ours_lat += await realtime_latency(env, dsn, subscribers, args.events)
            for q, label in ((0.5, "p50"), (0.99, "p99")):
                b, o = percentile(base_lat, q), percentile(ours_lat, q)
                rows.append((f"Realtime {label} ms, {subscribers} sub", f"{b:.1f}", f"{o:.1f}", f"{o / b:.1f}x"))
        return rows
    finally:
        if baseline_proc is not None:
            baseline_proc.terminate()
            await baseline_proc.wait()
        stack.stop()


async def _exposed(env: dict[str, str]) -> None:
    key = env["SUPABASE_SERVICE_ROLE_KEY"]
    async with aiohttp.ClientSession(headers={"apikey": key, "Authorization": f"Bearer {key}"}) as session:
        for _ in range(300):
            async with session.get(f"{env['SUPABASE_URL']}/rest/v1/bench_items?limit=0") as response:
                if response.status == 200:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError("bench_items never appeared in the REST schema cache")


def render(rows: list[tuple[str, str, str, str]], args: argparse.Namespace) -> str:
    intro = (f"{machine()}; {load_note()}; {args.connections} connections, {args.seconds:g} s per round, "
             f"{args.events} events per latency round; median of 3 alternating rounds. Baselines: a bare Starlette "
             "endpoint doing one asyncpg INSERT; LISTEN/NOTIFY commit-to-callback.")  # fmt: skip
    return section(intro, table(("measure", "baseline", "local stack", "ratio"), rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--events", type=int, default=100)
    args = parser.parse_args()
    publish(render(asyncio.run(run(args)), args))


if __name__ == "__main__":
    main()
