"""The whole local stack (Postgres, REST, Realtime) stopped and started again on the same ports and data
while a client keeps posting, with and without ``Prefer: respond-async``.

While it is down the API answers 503 with ``Retry-After`` and the error body, never a 200 without a
stored row; the listener backs off and lives on. Afterwards every accepted message is answered,
handed off or failed exactly once, none is left pending, and the oldest-pending gauge is back at 0.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from neiromatrius_devstack.process import DevstackProcess
from tests.conftest import MakeReceiver, Stack
from tests.reliability.outage_support import (
    OLDEST_PENDING,
    TERMINAL,
    Services,
    caught_up,
    fetch,
    post,
    private_stack,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.local_only

SWEEP_INTERVAL = 0.5
REPLY_WAIT = 2.0  # how long a request without respond-async waits for its reply
PACE = 0.05  # between one client's requests: about 20 a second per mode, not a flood
BOUND = 30.0
EACH_PHASE = 5  # answers of each kind, in each mode, that a phase waits for
ACCEPTED_BODY = {"id", "conversation_id", "state"}
ANSWERED_BODY = ACCEPTED_BODY | {"classification", "response", "model"}


@dataclass(frozen=True)
class Answer:
    mode: str  # "async" (Prefer: respond-async) or "sync" (waits for the reply)
    phase: str  # "up", "down" or "back": what the stack was doing when the request was sent
    status: int  # 0 when no HTTP answer came at all
    body: object
    retry_after: str | None


@dataclass
class Client:
    """One customer posting without pause, in both modes, and every answer it got."""

    http: httpx.AsyncClient
    api_url: str
    client_id: str
    hook_url: str
    phase: str = "up"
    answers: list[Answer] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def count(self, mode: str, phase: str, status: int) -> int:
        return sum(1 for a in self.answers if (a.mode, a.phase, a.status) == (mode, phase, status))

    def stop(self) -> None:
        self._stop.set()

    async def run(self, mode: str) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            phase = self.phase
            try:
                response = await post(
                    self.http, self.api_url, self.client_id, self.hook_url, f"{mode}-{n % 4}", wait=mode == "sync"
                )
            except httpx.HTTPError as exc:
                self.answers.append(Answer(mode, phase, 0, repr(exc), None))
            else:
                body = response.json() if response.headers.get("content-type") == "application/json" else response.text
                self.answers.append(
                    Answer(mode, phase, response.status_code, body, response.headers.get("Retry-After"))
                )
            await asyncio.sleep(PACE)  # a customer's pace, not synchronisation


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[tuple[Stack, DevstackProcess]]:
    with private_stack(tmp_path / "data") as started:
        yield started


async def test_the_stack_stopped_and_started_under_traffic_loses_and_duplicates_nothing(
    restartable: tuple[Stack, DevstackProcess], tmp_path: Path, receiver: MakeReceiver
) -> None:
    stack, process = restartable
    services = Services(tmp_path)
    try:
        api_url, api = await services.api(stack, REPLY_WAIT_SECONDS=str(REPLY_WAIT))
        metrics_url, listener = await services.listener(stack, SWEEP_INTERVAL_SECONDS=str(SWEEP_INTERVAL))
        hook = await receiver()
        async with httpx.AsyncClient(timeout=30) as http:
            client = Client(http, api_url, f"outage-{uuid.uuid4().hex[:10]}", hook.url())
            senders = [asyncio.create_task(client.run(mode)) for mode in ("async", "sync")]
            try:
                await eventually(lambda: client.count("async", "up", 202) >= EACH_PHASE, BOUND)
                await eventually(lambda: client.count("sync", "up", 200) >= EACH_PHASE, BOUND)

                await asyncio.to_thread(process.stop)
                client.phase = "down"
                await eventually(
                    lambda: min(client.count(m, "down", 503) for m in ("async", "sync")) >= EACH_PHASE, BOUND
                )
                await eventually(lambda: any("backing off" in line for line in listener.lines), BOUND)
                await asyncio.to_thread(process.start)
                client.phase = "back"
                await eventually(lambda: client.count("async", "back", 202) >= EACH_PHASE, BOUND)
                await eventually(lambda: client.count("sync", "back", 200) >= EACH_PHASE, BOUND)
            finally:
                client.stop()
                await asyncio.gather(*senders)

            assert listener.process.poll() is None, listener.output()  # alive, before waiting on its work
            rows = await eventually(lambda: finished_rows(stack, client.client_id), BOUND, every=0.2)
            scrape = await eventually(lambda: caught_up(http, metrics_url), BOUND, every=0.2)
        alive = (api.process.poll(), listener.process.poll())
        listener_log = list(listener.lines)
    finally:
        await asyncio.to_thread(services.stop)

    statuses = Counter((a.mode, a.phase, a.status) for a in client.answers)
    assert {a.status for a in client.answers} <= {200, 202, 503}, statuses  # no bare 500, no dropped connection
    for answer in client.answers:
        assert_answer_shape(answer)

    by_id = {str(row["id"]): row for row in rows}
    accepted = [a for a in client.answers if a.status in (200, 202)]
    accepted_ids = [str(a.body["id"]) for a in accepted if isinstance(a.body, dict)]
    assert len(set(accepted_ids)) == len(accepted_ids)  # each request, its own message
    assert set(accepted_ids) <= set(by_id)  # never an answer without a stored row
    for answer in accepted:
        assert isinstance(answer.body, dict)
        row = by_id[str(answer.body["id"])]
        if answer.status == 200:  # the reply it carried is the one stored, the only one
            assert answer.body["state"] == row["state"]
            assert answer.body["response"] == row["reply"]
    # Accepted = answered + handed off + failed, each exactly once; nothing left pending.
    finished = Counter(by_id[i]["state"] for i in accepted_ids)
    assert sum(finished[state] for state in TERMINAL) == len(accepted_ids), finished
    assert all(row["state"] in TERMINAL for row in rows)
    assert all(row["replies"] == 1 for row in rows if row["state"] == "answered")
    assert all(row["replies"] <= 1 for row in rows)
    assert all(row["classifications"] <= 1 for row in rows)

    assert scrape[OLDEST_PENDING] == 0
    assert alive == (None, None)  # neither process died with its database
    assert any("backing off" in line for line in listener_log)
    assert not [line for line in listener_log if "Traceback" in line or "unexpected error" in line]


async def finished_rows(stack: Stack, client_id: str) -> list[dict[str, object]] | None:
    """Every inbound row of the client with its reply, once none is pending or processing any more."""
    rows = await fetch(
        stack,
        "select m.id, m.state,"
        " (select count(*) from replies r where r.message_id = m.id) as replies,"
        " (select min(r.content) from replies r where r.message_id = m.id) as reply,"
        " (select count(*) from classifications c where c.message_id = m.id) as classifications"
        " from messages m where m.client_id = $1 and m.direction = 'inbound'",
        client_id,
    )
    if not rows or any(row["state"] not in TERMINAL for row in rows):
        return None
    return [dict(row) for row in rows]


def assert_answer_shape(answer: Answer) -> None:
    body = answer.body
    assert isinstance(body, dict), answer
    if answer.status == 503:
        assert answer.retry_after is not None and answer.retry_after.isdigit(), answer
        assert set(body) == {"error"}, answer
        assert body["error"]["code"] == "database_unavailable", answer
        assert isinstance(body["error"]["message"], str), answer
    elif answer.status == 202:
        assert set(body) >= ACCEPTED_BODY, answer
        uuid.UUID(body["id"])
    else:
        assert answer.mode == "sync", answer
        assert set(body) >= ANSWERED_BODY, answer
        assert body["state"] in TERMINAL, answer
