"""Benchmark the pipeline (real ``neiromatrius api`` and ``listener`` processes on the local stack) against
baselines measured in the same run; baseline and ours alternate, each figure the median of 3 rounds.

- intake: ``POST /api/messages/`` (``Prefer: respond-async``), 50 connections, beside the intake RPC
  called directly on the same stack and a bare Starlette endpoint doing one asyncpg INSERT; for the
  API's outbound HTTP on aiohttp (the default) and on httpx's own pool (HTTP_TRANSPORT=httpx).
- end to end: intake → reply → webhook at a steady 20 messages/s with the model faked at 200 ms:
  p50/p99 of webhook arrival - POST sent - 200 ms, beside the same two hops made directly.
- listener capacity: 0.9 x N / 0.2 s messages/s offered through the intake RPC (N = 16, 64 model
  calls at once), and 1.25 x that: achieved rate, calls in flight at the model, backlog and drain.
- sustained: closed loop through the API (each sender waits for its webhook) with N = 128: messages/s,
  CPU ms per message (API + listener + stack), peak RSS of the API and the listener.

Prints a table and appends it to ``bench/RESULTS.md`` with the machine's description.

    .venv/bin/python bench/pipeline.py [--quick] [--parts intake,e2e,capacity,sustained]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import dataclasses
import hashlib
import itertools
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from common import alternate, cpu_seconds, hammer, load_note, machine, peak_rss_mb, percentile, publish, section, table
from fakes import MODEL_DELAY, FakeModel, WebhookSink
from services import Service, Stack, start_api, start_bare_insert, start_listener

PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
CONTENT = "Hello! What are your opening hours on Saturday?"
_ids = itertools.count()


@dataclass(frozen=True)
class Plan:
    rounds: int
    intake_seconds: float
    e2e_seconds: float
    capacity_seconds: float
    sustained_seconds: float
    connections: int = 50
    e2e_rate: float = 20.0
    sustained_concurrency: int = 128
    sustained_senders: int = 160
    profile: Path | None = None  # py-spy the API, the listener and the stack during the sustained rounds


FULL = Plan(rounds=3, intake_seconds=5, e2e_seconds=15, capacity_seconds=10, sustained_seconds=15)
QUICK = Plan(rounds=1, intake_seconds=2, e2e_seconds=6, capacity_seconds=5, sustained_seconds=6)


@dataclass(frozen=True)
class Row:
    measure: str
    baseline: str
    ours: str
    ratio: str
    target: str
    met: bool | None  # None: informational

    def cells(self) -> tuple[str, ...]:
        met = "" if self.met is None else ("yes" if self.met else "NO")
        return (self.measure, self.baseline, self.ours, self.ratio, self.target, met)


def new_chat() -> str:
    return f"bench-{next(_ids)}"


def api_request(webhook_url: str) -> Callable[[int, int], tuple[dict[str, str], bytes]]:
    def request(n: int, i: int) -> tuple[dict[str, str], bytes]:
        headers = {
            "Content-Type": "application/json",
            "Prefer": "respond-async",
            "X-Webhook-URL": webhook_url,
            "X-Platform": "bench",
            "X-Chat-ID": new_chat(),
        }
        return headers, json.dumps({"client_id": f"client-{n}", "content": CONTENT}).encode()

    return request


def rpc_request(stack: Stack, webhook_url: str) -> Callable[[int, int], tuple[dict[str, str], bytes]]:
    """The intake RPC as supabase-py sends it, with the parameters the API would pass."""
    key = stack.service_key
    headers = {"apikey": key, "Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def request(n: int, i: int) -> tuple[dict[str, str], bytes]:
        chat = new_chat()
        params = {
            "p_client_id": f"client-{n}",
            "p_platform": "bench",
            "p_chat_id": chat,
            "p_content": CONTENT,
            "p_webhook_url": webhook_url,
            "p_idempotency_key": None,
            "p_platform_message_id": None,
            "p_fingerprint": hashlib.sha256(f"client-{n}|{chat}|{CONTENT}".encode()).hexdigest(),
            "p_payload": None,
            "p_handoff_reason": None,
        }
        return headers, json.dumps(params).encode()

    return request


def bare_request(n: int, i: int) -> tuple[dict[str, str], bytes]:
    return {"Content-Type": "application/json"}, json.dumps({"note": f"c{n}-{i}"}).encode()


def ratio(ours: float, base: float) -> str:
    return f"{ours / base:.0%}" if base else "-"


class CpuMeter:
    """Process CPU over an interval, for the given pids (their trees included)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self._start = cpu_seconds(pids)

    def seconds(self) -> float:
        return cpu_seconds(self.pids) - self._start


@asynccontextmanager
async def fresh_stack(folder: Path, name: str) -> AsyncIterator[tuple[Stack, list[Service]]]:
    """A stack of the part's own; the services the part appends to the list stop first, in reverse."""
    stack = Stack(folder / name)
    await stack.start()
    started: list[Service] = []
    try:
        yield stack, started
    finally:
        for service in reversed(started):
            service.stop()
        stack.stop()


# --- intake ------------------------------------------------------------------------------------------


async def intake_part(plan: Plan, folder: Path) -> list[Row]:
    async with fresh_stack(folder, "intake") as (stack, started):
        bare, bare_url = await start_bare_insert(stack, folder)
        started.append(bare)
        ours, ours_url = await start_api(stack, folder)
        started.append(ours)
        plain, plain_url = await start_api(stack, folder, HTTP_TRANSPORT="httpx")
        started.append(plain)
        hook = "http://127.0.0.1:9/hook"  # nothing answers: no listener runs here
        stack_pids = stack.pids()

        def measured(url: str, request: Callable[[int, int], tuple[dict[str, str], bytes]], expect: int,
                     pids: list[int], cpu: list[float]) -> Callable[[], Awaitable[float]]:  # fmt: skip
            async def run() -> float:
                meter = CpuMeter(pids)
                started_at = time.perf_counter()
                rate = await hammer(url, request, plan.intake_seconds, plan.connections, expect)
                cpu.append(meter.seconds() * 1000 / (rate * (time.perf_counter() - started_at)))
                return rate

            return run

        cpu_bare: list[float] = []
        cpu_rpc: list[float] = []
        cpu_ours: list[float] = []
        cpu_plain: list[float] = []
        bare_rate, rpc_rate, ours_rate, plain_rate = await alternate(
            plan.rounds,
            measured(bare_url, bare_request, 201, [bare.pid, *stack_pids], cpu_bare),
            measured(f"{stack.url}/rest/v1/rpc/intake_message", rpc_request(stack, hook), 200, stack_pids, cpu_rpc),
            measured(f"{ours_url}/api/messages/", api_request(hook), 202, [ours.pid, *stack_pids], cpu_ours),
            measured(f"{plain_url}/api/messages/", api_request(hook), 202, [plain.pid, *stack_pids], cpu_plain),
        )
        med = statistics.median
        return [
            Row("intake req/s vs direct RPC", f"{rpc_rate:.0f}", f"{ours_rate:.0f}", ratio(ours_rate, rpc_rate),
                "≥ 70%", ours_rate >= 0.7 * rpc_rate),
            Row("intake req/s vs bare INSERT", f"{bare_rate:.0f}", f"{ours_rate:.0f}", ratio(ours_rate, bare_rate),
                "≥ 35%", ours_rate >= 0.35 * bare_rate),
            Row("intake req/s, httpx pool vs aiohttp", f"{plain_rate:.0f}", f"{ours_rate:.0f}",
                ratio(ours_rate, plain_rate), "", None),
            Row("intake CPU ms/req (API+stack), httpx vs aiohttp", f"{med(cpu_plain):.2f}", f"{med(cpu_ours):.2f}",
                ratio(med(cpu_ours), med(cpu_plain)), "", None),
            Row("CPU ms/req: bare INSERT vs direct RPC (stack)", f"{med(cpu_bare):.2f}", f"{med(cpu_rpc):.2f}",
                ratio(med(cpu_rpc), med(cpu_bare)), "", None),
        ]  # fmt: skip


# --- open loop and the pipeline's pieces ---------------------------------------------------------------


async def open_loop(rate: float, seconds: float, send: Callable[[], Awaitable[None]]) -> int:
    """Start ``send()`` every 1/rate s by the clock, not by completion; wait for all; return how many."""
    count = round(rate * seconds)
    start = time.monotonic()
    tasks = []
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send()))
    await asyncio.gather(*tasks)
    return count


class Errors:
    """Answers other than the expected one (or no answer): counted, never fatal, shown in the table."""

    count = 0


def poster(
    session: aiohttp.ClientSession, url: str, request: Callable[[int, int], tuple[dict[str, str], bytes]], expect: int
) -> Callable[[], Awaitable[tuple[str, float] | None]]:
    """One POST per call; the chat id (from X-Chat-ID or p_chat_id) and the monotonic send time, or None."""

    async def post() -> tuple[str, float] | None:
        headers, body = request(0, 0)
        chat = headers.get("X-Chat-ID") or json.loads(body)["p_chat_id"]
        sent = time.monotonic()
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                ok = response.status == expect
        except aiohttp.ClientError:
            ok = False
        if not ok:
            Errors.count += 1
            return None
        return chat, sent

    return post


async def drained(sink: WebhookSink, chats: list[str], bound: float) -> bool:
    deadline = time.monotonic() + bound
    while any(chat not in sink.arrived for chat in chats):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


# --- end to end --------------------------------------------------------------------------------------


async def e2e_part(plan: Plan, folder: Path, model: FakeModel, sink: WebhookSink) -> list[Row]:
    async with fresh_stack(folder, "e2e") as (stack, started):
        api, api_url = await start_api(stack, folder)
        started.append(api)
        started.append(await start_listener(stack, folder, model.base_url, 16))
        ours: list[float] = []
        rounds: list[list[float]] = []  # each round's added latencies: the tail must hold in every one
        base: list[float] = []
        missing: list[str] = []
        timed: list[tuple[str, float, float]] = []  # chat, POST sent and webhook arrived (wall clock, s)
        wall = time.time() - time.monotonic()
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            post = poster(session, f"{api_url}/api/messages/", api_request(sink.url), 202)

            async def through_pipeline() -> None:
                sends: list[tuple[str, float]] = []

                async def one() -> None:
                    if sent := await post():
                        sends.append(sent)

                await open_loop(plan.e2e_rate, plan.e2e_seconds, one)
                await drained(sink, [chat for chat, _ in sends], 30)
                rounds.append([])
                for chat, sent in sends:
                    if chat in sink.arrived:
                        rounds[-1].append((sink.arrived[chat] - sent - MODEL_DELAY) * 1000)
                        ours.append(rounds[-1][-1])
                        timed.append((chat, sent + wall, sink.arrived[chat] + wall))
                    else:
                        missing.append(chat)

            async def bare_hops() -> None:
                # The floor: the same two hops (model call, webhook POST) made directly from here.
                async def one() -> None:
                    chat, sent = new_chat(), time.monotonic()
                    async with session.post(f"{model.base_url}/chat/completions", data=b"{}") as response:
                        await response.read()
                    body = json.dumps({"data": {"chat_id": chat}}).encode()
                    async with session.post(sink.url, data=body) as response:
                        await response.read()
                    base.append((sink.arrived[chat] - sent - MODEL_DELAY) * 1000)

                await open_loop(plan.e2e_rate, plan.e2e_seconds, one)

            for _ in range(plan.rounds):
                await bare_hops()
                await through_pipeline()
        b50, b99 = percentile(base, 0.5), percentile(base, 0.99)
        o50, o99 = percentile(ours, 0.5), percentile(ours, 0.99)
        return [
            Row(f"added latency p50 ms @{plan.e2e_rate:g}/s", f"{b50:.1f}", f"{o50:.1f}", f"+{o50 - b50:.1f}",
                "≤ 60", o50 <= 60),
            Row(f"added latency p99 ms @{plan.e2e_rate:g}/s", f"{b99:.1f}", f"{o99:.1f}", f"+{o99 - b99:.1f}",
                "≤ 250", o99 <= 250),
            Row("  p99 ms of each round", "", ", ".join(f"{percentile(r, 0.99):.0f}" for r in rounds if r), "", "≤ 250",
                all(r and percentile(r, 0.99) <= 250 for r in rounds)),
            Row("end to end: webhooks missing after 30 s", "0", str(len(missing)), "", "0", not missing),
            *await stage_rows(stack, timed, folder / "e2e-stages.json"),
        ]  # fmt: skip


# Where a message's time goes, from the rows the pipeline writes: each transaction stamps now() (its start).
STAGES_SQL = """
select c.chat_id, extract(epoch from m.created_at) as intake, extract(epoch from m.claimed_at) as claimed,
       coalesce(k.latency_ms, 0) / 1000.0 as model, extract(epoch from r.created_at) as completed,
       extract(epoch from a.created_at) - a.duration_ms / 1000.0 as sent
from messages m
join conversations c on c.id = m.conversation_id
join replies r on r.id = m.reply_id
left join classifications k on k.message_id = m.id
join delivery_attempts a on a.reply_id = r.id and a.attempt = 1
where m.direction = 'inbound' and c.chat_id = any($1::text[])
"""
STAGE_NAMES = ("POST → intake", "intake → claim", "model", "claim → complete, less the model",
               "complete → webhook sent", "sent → arrived")  # fmt: skip


async def stage_rows(stack: Stack, timed: list[tuple[str, float, float]], dump: Path) -> list[Row]:
    """The slowest 1% of messages beside the median one, stage by stage: which stage makes the tail.
    Every message's stages go to ``dump`` (JSON: sent time, total and stages in ms) for a closer look."""
    if not timed:
        return []
    conn = await asyncpg.connect(stack.dsn)
    try:
        rows = {row["chat_id"]: row for row in await conn.fetch(STAGES_SQL, [chat for chat, _, _ in timed])}
    finally:
        await conn.close()
    stages: list[tuple[float, list[float]]] = []  # total, then each stage (ms)
    raw: list[dict[str, Any]] = []
    for chat, sent, arrived in timed:
        if (row := rows.get(chat)) is None:
            continue
        intake, claimed, model = float(row["intake"]), float(row["claimed"]), float(row["model"])
        completed, delivered = float(row["completed"]), float(row["sent"])
        seconds = (intake - sent, claimed - intake, model, completed - claimed - model, delivered - completed,
                   arrived - delivered)  # fmt: skip
        total, each = (arrived - sent) * 1000, [p * 1000 for p in seconds]
        stages.append((total, each))
        raw.append({"sent": sent, "total": total, "stages": each})
    await asyncio.to_thread(dump.write_text, json.dumps({"stages": STAGE_NAMES, "messages": raw}))
    stages.sort(key=lambda item: item[0])
    slowest = stages[-max(1, len(stages) // 100) :]
    median = stages[len(stages) // 2][1]
    return [
        Row(f"slowest 1% (n={len(slowest)}) vs median, ms: {name}", f"{median[i]:.1f}",
            f"{statistics.fmean(s[1][i] for s in slowest):.1f}", "", "", None)
        for i, name in enumerate(STAGE_NAMES)
    ]  # fmt: skip


# --- listener capacity -----------------------------------------------------------------------------------


@dataclass
class Offered:
    achieved: float
    in_flight: int
    backlog: int
    drain_seconds: float | None  # None: did not drain within the bound
    lost: int
    window_cores: dict[str, float]  # CPU by process while the load is offered, in cores
    drain_cores: dict[str, float]  # and while the backlog drains


class Cores:
    """CPU used since it was made by each named process and by this one (the load generator, which also
    serves the fake model and the webhook sink), in cores."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self._meters = {name: CpuMeter(group) for name, group in pids.items()}
        self._own = _own_cpu()
        self._start = time.monotonic()

    def read(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._start
        cores = {name: meter.seconds() / elapsed for name, meter in self._meters.items()}
        cores["load generator"] = (_own_cpu() - self._own) / elapsed
        return cores


def _own_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


async def offer(
    plan: Plan,
    stack: Stack,
    model: FakeModel,
    sink: WebhookSink,
    session: aiohttp.ClientSession,
    rate: float,
    pids: dict[str, list[int]],
) -> Offered:
    post = poster(session, f"{stack.url}/rest/v1/rpc/intake_message", rpc_request(stack, sink.url), 200)
    sends: list[tuple[str, float]] = []

    async def one() -> None:
        if sent := await post():
            sends.append(sent)

    model.reset()
    start = time.monotonic()
    cores = Cores(pids)
    await open_loop(rate, plan.capacity_seconds, one)
    end = time.monotonic()
    window_cores = cores.read()
    conn = await asyncpg.connect(stack.dsn)
    try:
        backlog = await conn.fetchval(
            "select count(*) from public.messages where direction = 'inbound' and state in ('pending', 'processing')"
        )
    finally:
        await conn.close()
    warm = min(1.0, plan.capacity_seconds / 5)  # the first second fills the pipe
    chats = [chat for chat, _ in sends]
    # Every reply delivered in the window counts, an earlier round's backlog included: the listener's rate.
    in_window = bisect.bisect_right(sink.times, end) - bisect.bisect_left(sink.times, start + warm)
    cores = Cores(pids)
    ok = await drained(sink, chats, bound=30 + backlog / (rate / 1.25))
    drain = time.monotonic() - end if ok else None
    drain_cores = cores.read()
    lost = await lost_messages(stack, [chat for chat in chats if chat not in sink.arrived])
    achieved = in_window / (end - start - warm)
    return Offered(achieved, model.max_in_flight, backlog, drain, lost, window_cores, drain_cores)


def cores_text(readings: list[dict[str, float]]) -> str:
    """The median of each process's cores over the rounds, and their sum."""
    each = [statistics.median(r[name] for r in readings) for name in readings[0]]
    return ", ".join(f"{c:.2f}" for c in each) + f" = {sum(each):.2f}"


async def lost_messages(stack: Stack, undelivered: list[str]) -> int:
    """Undelivered messages that are not on their way either: no row, or given up (failed)."""
    if not undelivered:
        return 0
    conn = await asyncpg.connect(stack.dsn)
    try:
        on_the_way = await conn.fetchval(
            "select count(*) from public.messages m join public.conversations c on c.id = m.conversation_id "
            "where c.chat_id = any($1::text[]) and m.direction = 'inbound' and m.state <> 'failed'",
            undelivered,
        )
    finally:
        await conn.close()
    return len(undelivered) - int(on_the_way)


async def capacity_part(plan: Plan, folder: Path, model: FakeModel, sink: WebhookSink) -> list[Row]:
    rows: list[Row] = []
    async with fresh_stack(folder, "capacity") as (stack, _):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            for n in (16, 64):
                listener = await start_listener(stack, folder, model.base_url, n)
                gateway, postgres = stack.pids()
                pids = {"listener": [listener.pid], "gateway": [gateway], "Postgres": [postgres]}
                try:
                    rows += await capacity_rows(plan, stack, model, sink, session, n, pids)
                finally:
                    listener.stop()
    return rows


async def capacity_rows(
    plan: Plan,
    stack: Stack,
    model: FakeModel,
    sink: WebhookSink,
    session: aiohttp.ClientSession,
    n: int,
    pids: dict[str, list[int]],
) -> list[Row]:
    steady_rate = 0.9 * n / MODEL_DELAY
    over_rate = 1.25 * steady_rate
    steady: list[Offered] = []
    over: list[Offered] = []
    for _ in range(plan.rounds):
        steady.append(await offer(plan, stack, model, sink, session, steady_rate, pids))
        over.append(await offer(plan, stack, model, sink, session, over_rate, pids))
    med = statistics.median
    achieved = med(o.achieved for o in steady)
    over_achieved = med(o.achieved for o in over)
    in_flight = max(o.in_flight for o in steady + over)
    lost = sum(o.lost for o in steady + over)
    drains = [o.drain_seconds for o in over]
    backlog = med(o.backlog for o in over)
    drain_text = "never" if None in drains else f"{max(d for d in drains if d is not None):.1f} s"
    # Once the offered load stops, the backlog is the listener's alone: the rate it drains at is its capacity.
    drain_rates = [o.backlog / o.drain_seconds for o in over if o.drain_seconds]
    drain_rate = f"{med(drain_rates):.0f}" if drain_rates else "-"
    names = ", ".join(steady[0].window_cores)  # where the 2 cores go: the offered intake's share grows with it
    return [
        Row(f"N={n}: achieved msg/s @0.9x", f"{steady_rate:.0f}", f"{achieved:.0f}", ratio(achieved, steady_rate),
            "≥ 90%", achieved >= 0.9 * steady_rate),
        Row(f"N={n}: max model calls in flight", str(n), str(in_flight), ratio(in_flight, n), f"≤ {n}",
            in_flight <= n),
        Row(f"N={n}: achieved msg/s @1.25x overload", f"{over_rate:.0f}", f"{over_achieved:.0f}",
            ratio(over_achieved, over_rate), "", None),
        Row(f"N={n}: achieved msg/s @1.25x vs @0.9x", f"{achieved:.0f}", f"{over_achieved:.0f}",
            ratio(over_achieved, achieved), "≥ 90%", over_achieved >= 0.9 * achieved),
        Row(f"N={n}: overload backlog at end → drained in", "0", f"{backlog:.0f} → {drain_text}", "",
            "drains", None not in drains),
        Row(f"N={n}: backlog drained at msg/s (no load offered)", "", drain_rate, "", "", None),
        Row(f"N={n}: cores @0.9x ({names})", "", cores_text([o.window_cores for o in steady]), "", "", None),
        Row(f"N={n}: cores @1.25x", "", cores_text([o.window_cores for o in over]), "", "", None),
        Row(f"N={n}: cores draining", "", cores_text([o.drain_cores for o in over]), "", "", None),
        Row(f"N={n}: messages lost (all rounds)", "0", str(lost), "", "0", lost == 0),
    ]  # fmt: skip


# --- sustained ---------------------------------------------------------------------------------------------


async def sustained_part(plan: Plan, folder: Path, model: FakeModel, sink: WebhookSink) -> list[Row]:
    async with fresh_stack(folder, "sustained") as (stack, started):
        bare, bare_url = await start_bare_insert(stack, folder)
        started.append(bare)
        api, api_url = await start_api(stack, folder)
        started.append(api)
        listener = await start_listener(stack, folder, model.base_url, plan.sustained_concurrency)
        started.append(listener)
        stack_pids = stack.pids()
        cpu_base: list[float] = []
        cpu_ours: list[float] = []
        own_cpu: list[float] = []
        cpu_split: dict[str, list[float]] = {}

        async def baseline() -> float:
            meter = CpuMeter([bare.pid, *stack_pids])
            rate = await hammer(bare_url, bare_request, plan.sustained_seconds, plan.connections, 201)
            cpu_base.append(meter.seconds() * 1000 / (rate * plan.sustained_seconds))
            return rate

        async def pipeline() -> float:
            if plan.profile is not None:
                profile(plan.profile, plan.sustained_seconds, api=api.pid, listener=listener.pid, stack=stack_pids[0])
            meter = CpuMeter([api.pid, listener.pid, *stack_pids])
            named = (("API", [api.pid]), ("listener", [listener.pid]), ("stack's gateway (REST, Realtime, Auth)",
                     [stack_pids[0]]), ("stack's Postgres", [stack_pids[1]]))  # fmt: skip
            parts = {name: CpuMeter(pids) for name, pids in named}
            own = _own_cpu()
            count, elapsed = await closed_loop(plan, session, f"{api_url}/api/messages/", sink)
            cpu_ours.append(meter.seconds() * 1000 / count)
            for name, part in parts.items():
                cpu_split.setdefault(name, []).append(part.seconds() * 1000 / count)
            own_cpu.append((_own_cpu() - own) / elapsed)
            return count / elapsed

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            base_rate, rate = await alternate(plan.rounds, baseline, pipeline)
        med = statistics.median
        api_rss, listener_rss, bare_rss = peak_rss_mb(api.pid), peak_rss_mb(listener.pid), peak_rss_mb(bare.pid)
        return [
            Row("pipeline msg/s (closed loop) vs bare INSERT/s", f"{base_rate:.0f}", f"{rate:.0f}",
                ratio(rate, base_rate), "≥ 300", rate >= 300),
            Row("CPU ms/msg (API+listener+stack) vs ms/INSERT", f"{med(cpu_base):.2f}", f"{med(cpu_ours):.2f}",
                f"{med(cpu_ours) / med(cpu_base):.1f}x", "", None),
            *(Row(f"  of which the {name}", "", f"{med(values):.2f}", f"{med(values) / med(cpu_ours):.0%}", "", None)
              for name, values in cpu_split.items()),
            Row("peak RSS MB: API vs bare endpoint", f"{bare_rss:.0f}", f"{api_rss:.0f}", ratio(api_rss, bare_rss),
                "< 200", api_rss < 200),
            Row("peak RSS MB: listener vs bare endpoint", f"{bare_rss:.0f}", f"{listener_rss:.0f}",
                ratio(listener_rss, bare_rss), "< 200", listener_rss < 200),
            Row("load generator's own CPU (cores)", "", f"{med(own_cpu):.2f}", "", "", None),
        ]  # fmt: skip


def profile(folder: Path, seconds: float, **pids: int) -> None:
    """Start ``py-spy record`` (collapsed stacks) on each process for the next ``seconds``; it exits by itself."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, pid in pids.items():
        out = folder / f"{name}-{time.monotonic_ns()}.txt"
        argv = [PY_SPY, "record", "--nonblocking", "--format", "raw", "--rate", "50", "--pid", str(pid),
                "--duration", str(int(seconds)), "--output", str(out)]  # fmt: skip
        subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def closed_loop(plan: Plan, session: aiohttp.ClientSession, url: str, sink: WebhookSink) -> tuple[int, float]:
    """``sustained_senders`` senders each send a message and wait for its webhook; return (count, seconds)."""
    request = api_request(sink.url)
    done = 0
    start = time.monotonic()
    deadline = start + plan.sustained_seconds

    async def sender() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            headers, body = request(0, 0)
            arrived = sink.expect(headers["X-Chat-ID"])
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    accepted = response.status == 202
            except aiohttp.ClientError:
                accepted = False
            if not accepted:
                Errors.count += 1
                continue
            try:
                await asyncio.wait_for(arrived, 60)
            except TimeoutError:
                Errors.count += 1
                continue
            done += 1

    await asyncio.gather(*(sender() for _ in range(plan.sustained_senders)))
    return done, time.monotonic() - start


# --- entry point ---------------------------------------------------------------------------------------------

PARTS = ("intake", "e2e", "capacity", "sustained")


async def run(plan: Plan, parts: list[str]) -> list[Row]:
    folder = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    model, sink = FakeModel(), WebhookSink()
    await model.start()
    await sink.start()
    rows: list[Row] = []
    try:
        for part in parts:
            print(f"… {part}", flush=True)
            if part == "intake":
                rows += await intake_part(plan, folder)
            elif part == "e2e":
                rows += await e2e_part(plan, folder, model, sink)
            elif part == "capacity":
                rows += await capacity_part(plan, folder, model, sink)
            else:
                rows += await sustained_part(plan, folder, model, sink)
    finally:
        await model.close()
        await sink.close()
    print(f"(logs in {folder})")
    rows.append(Row("requests refused or unanswered (all parts)", "0", str(Errors.count), "", "0", Errors.count == 0))
    return rows


def render(rows: list[Row], plan: Plan, quick: bool, load: str) -> str:
    intro = (
        f"Pipeline (`bench/pipeline.py{' --quick' if quick else ''}`): {machine()}; {load}; "
        f"median of {plan.rounds} alternating round(s); intake {plan.connections} connections x "
        f"{plan.intake_seconds:g} s; end to end {plan.e2e_rate:g} msg/s x {plan.e2e_seconds:g} s, model faked at "
        f"{MODEL_DELAY * 1000:.0f} ms (baseline: the model call and the webhook POST made directly); capacity "
        f"{plan.capacity_seconds:g} s per load through the intake RPC (baseline: the offered rate); sustained: "
        f"{plan.sustained_senders} closed-loop senders through the API, LISTENER_CONCURRENCY="
        f"{plan.sustained_concurrency}, {plan.sustained_seconds:g} s (baseline: the bare INSERT endpoint)."
    )
    header = ("measure", "baseline", "ours", "ratio", "target", "met?")
    return section(intro, table(header, [row.cells() for row in rows]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one round, short phases: a smoke run, not figures")
    parser.add_argument("--profile", type=Path, help="write py-spy profiles of the sustained rounds here")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    args = parser.parse_args()
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    plan = dataclasses.replace(QUICK if args.quick else FULL, profile=args.profile)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    load = load_note()
    publish(render(asyncio.run(run(plan, parts)), plan, args.quick, load))


if __name__ == "__main__":
    main()
