"""What the benchmarks share: alternating rounds, closed-loop load, percentiles, process CPU and memory,
the machine's description and the results table appended to ``bench/RESULTS.md``."""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import psutil

HERE = Path(__file__).parent
RESULTS = HERE / "RESULTS.md"

# A table the bare-insert baseline writes to; in the Realtime publication like the pipeline's tables.
BENCH_ITEMS_SQL = """
drop table if exists public.bench_items cascade;
create table public.bench_items (id bigint generated always as identity primary key, note text not null);
alter table public.bench_items enable row level security;
create policy bench_items_service on public.bench_items for all to service_role using (true) with check (true);
grant all on public.bench_items to service_role;
alter publication supabase_realtime add table public.bench_items;
"""

Measure = Callable[[], Awaitable[float]]
# (connection number, request number) -> (headers, body) of one request.
RequestFactory = Callable[[int, int], tuple[dict[str, str], bytes]]


async def hammer(url: str, request: RequestFactory, seconds: float, connections: int, expect: int) -> float:
    """Closed-loop load: ``connections`` clients POST as fast as answers come; return requests/s."""
    done = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(n: int) -> None:
            nonlocal done
            i = 0
            while time.perf_counter() < deadline:
                headers, body = request(n, i)
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != expect:
                        raise RuntimeError(f"{url} answered {response.status}: {(await response.text())[:200]}")
                done += 1
                i += 1

        start = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(connections)))
        return done / (time.perf_counter() - start)


async def alternate(rounds: int, *measures: Measure) -> list[float]:
    """Run the measures in turn, ``rounds`` times; return each one's median."""
    results: list[list[float]] = [[] for _ in measures]
    for _ in range(rounds):
        for values, measure in zip(results, measures, strict=True):
            values.append(await measure())
    return [statistics.median(values) for values in results]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def until(condition: Callable[[], bool], bound: float, every: float = 0.0005) -> None:
    deadline = time.perf_counter() + bound
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(every)


async def listening(port: int, bound: float = 10.0) -> None:
    deadline = time.perf_counter() + bound
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"nothing listened on {port} within {bound:g}s") from None
            await asyncio.sleep(0.05)


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU of these processes, their live descendants and their reaped children."""
    total = 0.0
    seen: set[int] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            family = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in family:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            try:
                t = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system + t.children_user + t.children_system
    return total


def peak_rss_mb(pid: int) -> float:
    """The process's high-water resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"
    )


def load_note() -> str:
    """The 1-minute load average: how busy the machine was with other work (noise) when the run started."""
    return f"load average {os.getloadavg()[0]:.2f} at start"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join("| " + line + " |" for line in lines) + "\n"


def section(intro: str, body: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"## {stamp}\n\n{intro}\n\n{body}"


def publish(text: str) -> None:
    """Print a result and append it to ``bench/RESULTS.md``."""
    print(text)
    with open(RESULTS, "a", encoding="utf-8") as results:
        results.write("\n" + text)
