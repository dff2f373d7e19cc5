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
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import websockets

from neiromatrius.devstack.process import DevstackProcess, free_port

HERE = Path(__file__).parent
SETUP_SQL = """
drop table if exists public.bench_items cascade;
create table public.bench_items (id bigint generated always as identity primary key, note text not null);
alter table public.bench_items enable row level security;
create policy bench_items_service on public.bench_items for all to service_role using (true) with check (true);
grant all on public.bench_items to service_role;
alter publication supabase_realtime add table public.bench_items;
"""


async def hammer(url: str, headers: dict[str, str], seconds: float, connections: int) -> float:
    """Closed-loop load: ``connections`` clients POST as fast as answers come; return requests/s."""
    done = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def client(n: int) -> None:
            nonlocal done
            i = 0
            while time.perf_counter() < deadline:
                async with session.post(url, data=json.dumps({"note": f"c{n}-{i}"})) as response:
                    await response.read()
                    if response.status != 201:
                        raise RuntimeError(f"{url} answered {response.status}")
                done += 1
                i += 1

        start = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(connections)))
        return done / (time.perf_counter() - start)


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
            await _until(lambda row_id=row_id: len(received.get(row_id, [])) >= subscribers, 5.0)
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
            await _until(lambda i=i: len(arrivals.get(str(i), [])) >= listeners, 5.0)
            latencies += [(t - sent) * 1000 for t in arrivals.pop(str(i))]
    finally:
        for conn in [*conns, sender]:
            await conn.close()
    return latencies


async def _until(condition: Callable[[], bool], bound: float) -> None:
    deadline = time.perf_counter() + bound
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("event not received in time")
        await asyncio.sleep(0.0005)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


Measure = Callable[[], Awaitable[float]]


async def alternate(rounds: int, baseline: Measure, ours: Measure) -> tuple[float, float]:
    base, mine = [], []
    for _ in range(rounds):
        base.append(await baseline())
        mine.append(await ours())
    return statistics.median(base), statistics.median(mine)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"
    )


async def run(args: argparse.Namespace) -> list[tuple[str, str, str, str]]:
    data = Path(tempfile.mkdtemp(prefix="bench-devstack-"))
    stack = DevstackProcess(data / "data", migrations_dir=data / "none")
    env = stack.start()
    baseline_proc = None
    try:
        dsn = env["DATABASE_URL"].replace("+asyncpg", "", 1)
        conn = await asyncpg.connect(dsn)
        await conn.execute(SETUP_SQL)
        await conn.close()
        await _exposed(env)
        port = free_port()
        baseline_proc = await asyncio.create_subprocess_exec(
            sys.executable, str(HERE / "baseline_insert.py"), dsn, str(port)
        )
        await _listening(port)
        key = env["SUPABASE_SERVICE_ROLE_KEY"]
        rest_headers = {
            "apikey": key,
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Prefer": "return=representation",
            "Accept-Profile": "public",
            "Content-Profile": "public",
        }
        base, ours = await alternate(
            3,
            lambda: hammer(
                f"http://127.0.0.1:{port}/insert", {"Content-Type": "application/json"}, args.seconds, args.connections
            ),
            lambda: hammer(f"{env['SUPABASE_URL']}/rest/v1/bench_items", rest_headers, args.seconds, args.connections),
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


async def _listening(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError(f"baseline server never listened on {port}")


def render(rows: list[tuple[str, str, str, str]], args: argparse.Namespace) -> str:
    header = ("measure", "baseline", "local stack", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    intro = (f"## {stamp}\n\n{machine()}; {args.connections} connections, {args.seconds:g} s per round, "
             f"{args.events} events per latency round; median of 3 alternating rounds. Baselines: a bare Starlette "
             "endpoint doing one asyncpg INSERT; LISTEN/NOTIFY commit-to-callback.\n\n")  # fmt: skip
    return intro + "\n".join("| " + line + " |" for line in lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--events", type=int, default=100)
    args = parser.parse_args()
    table = render(asyncio.run(run(args)), args)
    print(table)
    with open(HERE / "RESULTS.md", "a", encoding="utf-8") as results:
        results.write("\n" + table)


if __name__ == "__main__":
    main()
