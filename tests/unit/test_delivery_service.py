"""The delivery use case: retry schedule, Retry-After, giving up, stopping, and independence of jobs."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from neiromatrius.core.delivery import DeliveryService, next_attempt_at
from neiromatrius.core.models import DeliveryAttempt, DeliveryJob, DeliveryOutcome
from tests.support.fakes import FakeDeliverer, FakeDeliveryLog
from tests.support.waiting import eventually

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SCHEDULE = (5.0, 300.0, 1800.0)
BOUND = 5.0  # seconds a test waits on an event before calling it a failure


def job(reply_id: str = "r1", attempt: int = 1, url: str | None = "https://hooks.example.com/x") -> DeliveryJob:
    return DeliveryJob(
        reply_id=reply_id,
        message_id=f"m-{reply_id}",
        conversation_id="c1",
        client_id="client-1",
        platform="web",
        chat_id="chat-1",
        webhook_url=url,
        content="Hello!",
        classification=None,
        attempt=attempt,
        created_at=NOW,
    )


def attempt(
    outcome: DeliveryOutcome, status: int | None = None, retry_after: float | None = None, reply_id: str = "r1"
) -> DeliveryAttempt:
    return DeliveryAttempt(
        outcome=outcome,
        webhook_id=reply_id,
        url="https://hooks.example.com/x",
        status_code=status,
        error=None if outcome is DeliveryOutcome.DELIVERED else f"HTTP {status}",
        retry_after=retry_after,
    )


def service(store: FakeDeliveryLog, deliverer: FakeDeliverer, seed: int = 7) -> DeliveryService:
    return DeliveryService(
        store,
        deliverer,
        schedule=SCHEDULE,
        lease_seconds=30.0,
        batch_limit=10,
        clock=lambda: NOW,
        rng=random.Random(seed),
    )


# next_attempt_at


@pytest.mark.parametrize(("number", "base"), [(1, 5.0), (2, 300.0), (3, 1800.0)])
def test_the_next_try_follows_the_schedule_within_ten_percent(number: int, base: float) -> None:
    rng = random.Random(1)
    times = [next_attempt_at(attempt(DeliveryOutcome.RETRY, 503), number, SCHEDULE, NOW, rng) for _ in range(500)]
    delays = [(when - NOW).total_seconds() for when in times if when is not None]

    assert len(delays) == 500

    assert all(base * 0.9 <= delay <= base * 1.1 for delay in delays)
    assert min(delays) < base < max(delays)  # jittered both ways, not a constant offset


def test_retry_after_longer_than_the_schedule_is_honoured() -> None:
    after = next_attempt_at(attempt(DeliveryOutcome.RETRY, 429, retry_after=120), 1, SCHEDULE, NOW, random.Random(1))

    assert after == NOW + timedelta(seconds=120)


def test_retry_after_shorter_than_the_schedule_does_not_hurry_the_next_try() -> None:
    after = next_attempt_at(attempt(DeliveryOutcome.RETRY, 503, retry_after=1), 2, SCHEDULE, NOW, random.Random(1))

    assert after is not None
    assert after - NOW >= timedelta(seconds=270)


def test_retry_after_is_capped_at_an_hour() -> None:
    after = next_attempt_at(
        attempt(DeliveryOutcome.RETRY, 503, retry_after=7 * 86400), 1, SCHEDULE, NOW, random.Random(1)
    )

    assert after == NOW + timedelta(hours=1)


def test_no_next_try_once_the_schedule_is_spent() -> None:
    rng = random.Random(1)

    assert next_attempt_at(attempt(DeliveryOutcome.RETRY, 503), len(SCHEDULE), SCHEDULE, NOW, rng) is not None
    assert next_attempt_at(attempt(DeliveryOutcome.RETRY, 503), len(SCHEDULE) + 1, SCHEDULE, NOW, rng) is None


@pytest.mark.parametrize("outcome", [DeliveryOutcome.DELIVERED, DeliveryOutcome.STOPPED, DeliveryOutcome.FAILED])
def test_only_a_retry_gets_a_next_try(outcome: DeliveryOutcome) -> None:
    assert next_attempt_at(attempt(outcome, 200, retry_after=60), 1, SCHEDULE, NOW, random.Random(1)) is None


# DeliveryService.start_rounds


async def deliver_due(delivery: DeliveryService, worker: str) -> int:
    """What the listener does on a wake-up (``start_rounds``), then wait until every attempt is recorded."""
    claimed = await delivery.start_rounds(worker)
    await delivery.aclose(within=BOUND)  # the attempts run on their own; let them finish
    return claimed


async def test_a_failed_attempt_is_recorded_with_its_next_try() -> None:
    store = FakeDeliveryLog(due=[job("r1", attempt=2)])
    deliverer = FakeDeliverer({"r1": attempt(DeliveryOutcome.RETRY, 503)})

    handled = await deliver_due(service(store, deliverer), "worker-a")

    assert handled == 1
    assert store.claims == [("worker-a", 10, 30.0)]
    [entry] = store.recorded
    assert entry.worker == "worker-a"
    assert entry.attempt.outcome is DeliveryOutcome.RETRY
    assert entry.attempt.status_code == 503
    assert entry.next_attempt_at is not None
    assert timedelta(seconds=270) <= entry.next_attempt_at - NOW <= timedelta(seconds=330)


async def test_the_receivers_retry_after_sets_the_next_try() -> None:
    store = FakeDeliveryLog(due=[job("r1", attempt=1)])
    deliverer = FakeDeliverer({"r1": attempt(DeliveryOutcome.RETRY, 429, retry_after=600)})

    await deliver_due(service(store, deliverer), "w")

    assert store.recorded[0].next_attempt_at == NOW + timedelta(seconds=600)


async def test_a_retry_after_the_last_scheduled_attempt_is_recorded_as_failed_for_good() -> None:
    store = FakeDeliveryLog(due=[job("r1", attempt=len(SCHEDULE) + 1)])
    deliverer = FakeDeliverer({"r1": attempt(DeliveryOutcome.RETRY, 500)})

    await deliver_due(service(store, deliverer), "w")

    [entry] = store.recorded
    assert entry.attempt.outcome is DeliveryOutcome.FAILED
    assert entry.attempt.status_code == 500
    assert entry.attempt.error == "HTTP 500"
    assert entry.next_attempt_at is None


async def test_gone_stops_delivery_with_no_next_try() -> None:
    store = FakeDeliveryLog(due=[job("r1", attempt=1)])
    deliverer = FakeDeliverer({"r1": attempt(DeliveryOutcome.STOPPED, 410, retry_after=60)})

    await deliver_due(service(store, deliverer), "w")

    [entry] = store.recorded
    assert entry.attempt.outcome is DeliveryOutcome.STOPPED
    assert entry.attempt.status_code == 410
    assert entry.next_attempt_at is None


async def test_delivered_and_blocked_attempts_get_no_next_try() -> None:
    store = FakeDeliveryLog(due=[job("ok"), job("blocked")])
    deliverer = FakeDeliverer(
        {
            "ok": attempt(DeliveryOutcome.DELIVERED, 200, reply_id="ok"),
            "blocked": attempt(DeliveryOutcome.FAILED, reply_id="blocked"),
        }
    )

    assert await deliver_due(service(store, deliverer), "w") == 2

    recorded = store.by_reply()
    assert recorded["ok"].attempt.outcome is DeliveryOutcome.DELIVERED
    assert recorded["blocked"].attempt.outcome is DeliveryOutcome.FAILED
    assert recorded["ok"].next_attempt_at is None
    assert recorded["blocked"].next_attempt_at is None


async def test_nothing_due_handles_nothing() -> None:
    store = FakeDeliveryLog()

    assert await deliver_due(service(store, FakeDeliverer({})), "w") == 0
    assert store.recorded == []


@pytest.mark.parametrize(("due", "claims"), [(0, 1), (3, 1), (10, 2), (23, 3)])
async def test_draining_stops_at_the_first_round_short_of_a_full_batch(due: int, claims: int) -> None:
    jobs = [job(f"r{i}") for i in range(due)]
    store = FakeDeliveryLog(due=list(jobs))
    deliverer = FakeDeliverer({j.reply_id: attempt(DeliveryOutcome.DELIVERED, 200, reply_id=j.reply_id) for j in jobs})

    delivery = service(store, deliverer)
    assert await delivery.start_rounds("w") == due
    await delivery.aclose(within=BOUND)  # the attempts run on their own; let them finish
    assert len(store.claims) == claims
    assert sorted(deliverer.delivered) == sorted(j.reply_id for j in jobs)


async def test_a_slow_endpoint_does_not_hold_up_the_others() -> None:
    store = FakeDeliveryLog(due=[job("slow"), job("fast-1"), job("fast-2")])
    deliverer = FakeDeliverer(
        {
            "slow": attempt(DeliveryOutcome.DELIVERED, 200, reply_id="slow"),
            "fast-1": attempt(DeliveryOutcome.DELIVERED, 200, reply_id="fast-1"),
            "fast-2": attempt(DeliveryOutcome.RETRY, 502, reply_id="fast-2"),
        }
    )
    release_slow = deliverer.held["slow"] = asyncio.Event()
    two_recorded = store.when_recorded(2)

    round_ = asyncio.create_task(deliver_due(service(store, deliverer), "w"))
    await asyncio.wait_for(two_recorded.wait(), BOUND)

    assert {entry.job.reply_id for entry in store.recorded} == {"fast-1", "fast-2"}
    assert deliverer.started["slow"].is_set()
    assert not round_.done()

    release_slow.set()
    assert await asyncio.wait_for(round_, BOUND) == 3
    assert [entry.job.reply_id for entry in store.recorded][-1] == "slow"


async def test_start_round_does_not_wait_for_a_hanging_endpoint_before_claiming_more() -> None:
    store = FakeDeliveryLog(due=[job("hangs")])
    deliverer = FakeDeliverer(
        {
            "hangs": attempt(DeliveryOutcome.DELIVERED, 200, reply_id="hangs"),
            "later": attempt(DeliveryOutcome.DELIVERED, 200, reply_id="later"),
        }
    )
    release = deliverer.held["hangs"] = asyncio.Event()
    first_recorded, both_recorded = store.when_recorded(1), store.when_recorded(2)
    delivery = service(store, deliverer)

    assert await delivery.start_round("w") == 1
    await asyncio.wait_for(deliverer.started.setdefault("hangs", asyncio.Event()).wait(), BOUND)
    # A reply that became due while the first attempt hangs goes out in the next round, not after it.
    store.due.append(job("later"))
    assert await asyncio.wait_for(delivery.start_round("w"), BOUND) == 1
    await asyncio.wait_for(first_recorded.wait(), BOUND)
    assert [entry.job.reply_id for entry in store.recorded] == ["later"]

    release.set()
    await asyncio.wait_for(both_recorded.wait(), BOUND)
    await delivery.aclose()


async def test_start_round_claims_no_more_than_its_free_slots() -> None:
    store = FakeDeliveryLog(due=[job(f"r{i}") for i in range(5)])
    deliverer = FakeDeliverer({f"r{i}": attempt(DeliveryOutcome.DELIVERED, 200) for i in range(5)})
    for i in range(5):
        deliverer.held[f"r{i}"] = asyncio.Event()
    delivery = DeliveryService(
        store,
        deliverer,
        schedule=SCHEDULE,
        lease_seconds=30.0,
        batch_limit=10,
        max_in_flight=3,
        clock=lambda: NOW,
    )

    assert await delivery.start_round("w") == 3
    assert await delivery.start_round("w") == 0  # every slot is taken; nothing more is leased
    assert [limit for _, limit, _ in store.claims] == [3]
    await delivery.aclose()  # abandoned attempts: their leases run out and they are tried again
    assert store.recorded == []


async def test_closing_with_a_grace_lets_an_attempt_on_the_wire_finish_and_record() -> None:
    store = FakeDeliveryLog(due=[job("r0")])
    deliverer = FakeDeliverer({"r0": attempt(DeliveryOutcome.DELIVERED, 200, reply_id="r0")})
    deliverer.held["r0"] = asyncio.Event()
    delivery = DeliveryService(
        store,
        deliverer,
        schedule=SCHEDULE,
        lease_seconds=30.0,
        batch_limit=10,
        clock=lambda: NOW,
    )
    assert await delivery.start_round("w") == 1
    closing = asyncio.create_task(delivery.aclose(within=BOUND))
    asyncio.get_running_loop().call_soon(deliverer.held["r0"].set)  # the receiver answers during the grace
    await asyncio.wait_for(closing, BOUND)
    assert [entry.job.reply_id for entry in store.recorded] == ["r0"]


async def test_a_store_failure_for_one_reply_does_not_stop_the_others() -> None:
    store = FakeDeliveryLog(due=[job("a"), job("b")], fail_recording_for={"a"})
    deliverer = FakeDeliverer(
        {"a": attempt(DeliveryOutcome.DELIVERED, 200, reply_id="a"), "b": attempt(DeliveryOutcome.DELIVERED, 200)}
    )

    assert await deliver_due(service(store, deliverer), "w") == 2

    assert [entry.job.reply_id for entry in store.recorded] == ["b"]


async def test_one_summary_line_per_attempt_without_the_url(caplog: pytest.LogCaptureFixture) -> None:
    store = FakeDeliveryLog(due=[job("r1", url="https://hooks.example.com/x?token=s3cret")])
    deliverer = FakeDeliverer({"r1": attempt(DeliveryOutcome.RETRY, 503)})

    with caplog.at_level("INFO", logger="neiromatrius.core.delivery"):
        await deliver_due(service(store, deliverer), "w")

    [line] = [record.getMessage() for record in caplog.records if record.name == "neiromatrius.core.delivery"]
    assert "reply=r1" in line
    assert "outcome=retry" in line
    assert "status=503" in line
    assert "s3cret" not in line
    assert "hooks.example.com" not in line


async def test_a_closing_service_holds_no_slot_and_a_held_slot_asks_no_lease() -> None:
    delivery = service(FakeDeliveryLog(), FakeDeliverer({}))
    slot = delivery.reserve("w")
    assert slot is not None and slot.lease_seconds == 30.0

    await delivery.aclose()

    # A reply completed now stays unleased: another listener takes it at once, not after a lease.
    assert slot.lease_seconds is None
    assert delivery.reserve("w") is None


async def test_a_slot_freed_after_a_round_found_none_calls_for_a_round() -> None:
    store = FakeDeliveryLog(due=[job("r0"), job("r1")])
    deliverer = FakeDeliverer({f"r{i}": attempt(DeliveryOutcome.DELIVERED, 200, reply_id=f"r{i}") for i in range(2)})
    deliverer.held["r0"] = asyncio.Event()
    delivery = DeliveryService(
        store, deliverer, schedule=SCHEDULE, lease_seconds=30.0, batch_limit=10, max_in_flight=1, clock=lambda: NOW
    )
    calls: list[bool] = []
    delivery.on_slot_free = lambda: calls.append(True)

    assert await delivery.start_round("w") == 1  # r0 holds the only slot
    assert delivery.reserve("w") is None  # a message being answered finds none
    assert await delivery.start_round("w") == 0
    assert calls == []
    deliverer.held["r0"].set()
    await eventually(lambda: calls == [True], BOUND)  # r0 is done: a round may lease r1 now
    assert await delivery.start_round("w") == 1
    await delivery.aclose(within=BOUND)
    assert sorted(entry.job.reply_id for entry in store.recorded) == ["r0", "r1"]


async def test_a_slot_given_back_calls_for_a_round_only_when_someone_went_without() -> None:
    delivery = DeliveryService(
        FakeDeliveryLog(), FakeDeliverer({}), schedule=SCHEDULE, lease_seconds=30.0, batch_limit=10, max_in_flight=1
    )
    calls: list[bool] = []
    delivery.on_slot_free = lambda: calls.append(True)
    slot = delivery.reserve("w")
    assert slot is not None
    assert delivery.reserve("w") is None
    slot.release()
    assert calls == [True]
    again = delivery.reserve("w")
    assert again is not None
    again.release()
    assert calls == [True]  # nobody went without this time
