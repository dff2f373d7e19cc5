"""The token-bucket arithmetic: refill, capacity, exact waits, and both buckets taken together or not at all."""

from __future__ import annotations

import pytest

from neiromatrius.core.ratelimit import Bucket, BucketState, Decision, IntakeLimits, Limit, level, take

PER_MINUTE_60 = Bucket(capacity=60.0, refill_per_second=1.0)


def test_a_minute_allowance_fills_the_bucket_and_refills_it_evenly_over_the_minute() -> None:
    assert Bucket.per_minute(30) == Bucket(capacity=30.0, refill_per_second=0.5)
    assert Bucket.per_minute(30).full_after == 60.0  # type: ignore[union-attr]
    assert Bucket.per_minute(0) is None


def test_a_bucket_refills_with_time_and_never_past_its_capacity() -> None:
    bucket = Bucket(capacity=5.0, refill_per_second=0.5)

    assert level(bucket, None, now=100.0) == 5.0
    assert level(bucket, BucketState(tokens=0.0, updated=100.0), now=104.0) == 2.0
    assert level(bucket, BucketState(tokens=4.0, updated=100.0), now=200.0) == 5.0
    assert level(bucket, BucketState(tokens=1.0, updated=100.0), now=90.0) == 1.0  # a clock step back adds nothing


def take_many(limits: list[Limit], states: dict[str, BucketState], now: float, count: int) -> list[Decision]:
    decisions = []
    for _ in range(count):
        decision, updated = take(limits, states, now)
        states.update(updated)
        decisions.append(decision)
    return decisions


def test_the_capacity_is_spent_then_the_wait_is_exact() -> None:
    limits = [Limit("chat", "c", Bucket(capacity=3.0, refill_per_second=0.05))]  # 3 a minute
    states: dict[str, BucketState] = {}

    decisions = take_many(limits, states, now=10.0, count=4)

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1] == Decision(allowed=False, retry_after=pytest.approx(20.0), scope="chat")
    refused, _ = take(limits, states, now=15.0)
    assert refused.retry_after == pytest.approx(15.0)
    allowed, updated = take(limits, states, now=30.0)
    assert allowed.allowed
    assert updated["c"].tokens == pytest.approx(0.0)


def test_a_refusal_stores_nothing() -> None:
    limits = [Limit("client", "k", PER_MINUTE_60)]
    states = {"k": BucketState(tokens=0.5, updated=0.0)}

    decision, updated = take(limits, states, now=0.0)

    assert decision.retry_after == pytest.approx(0.5)
    assert updated == {}


def test_an_empty_chat_bucket_leaves_the_clients_tokens_alone() -> None:
    client = Limit("client", "client", PER_MINUTE_60)
    chat = Limit("chat", "chat", PER_MINUTE_60)
    states = {"client": BucketState(tokens=10.0, updated=0.0), "chat": BucketState(tokens=0.0, updated=0.0)}

    decision, updated = take([client, chat], states, now=0.0)

    assert decision == Decision(allowed=False, retry_after=1.0, scope="chat")
    assert updated == {}


def test_an_empty_client_bucket_leaves_the_chats_tokens_alone() -> None:
    client = Limit("client", "client", PER_MINUTE_60)
    chat = Limit("chat", "chat", PER_MINUTE_60)
    states = {"client": BucketState(tokens=0.25, updated=0.0)}

    decision, updated = take([client, chat], states, now=0.0)

    assert decision == Decision(allowed=False, retry_after=0.75, scope="client")
    assert updated == {}


def test_an_allowed_request_takes_from_every_bucket() -> None:
    client = Limit("client", "client", PER_MINUTE_60)
    chat = Limit("chat", "chat", Bucket(capacity=2.0, refill_per_second=1 / 30))

    decision, updated = take([client, chat], {}, now=5.0)

    assert decision.allowed
    assert updated == {"client": BucketState(59.0, 5.0), "chat": BucketState(1.0, 5.0)}


def test_when_both_refuse_the_one_that_refills_last_is_named() -> None:
    client = Limit("client", "client", Bucket(capacity=10.0, refill_per_second=1.0))
    chat = Limit("chat", "chat", Bucket(capacity=2.0, refill_per_second=0.1))
    states = {"client": BucketState(0.0, 0.0), "chat": BucketState(0.5, 0.0)}

    decision, _ = take([client, chat], states, now=0.0)

    assert decision == Decision(allowed=False, retry_after=pytest.approx(5.0), scope="chat")


def test_intake_keys_keep_client_platform_and_chat_apart() -> None:
    limits = IntakeLimits.per_minute(client=120, chat=30)

    first = limits.for_message("a:b", "test", "c")
    second = limits.for_message("a", "test", "b:c")

    assert [limit.scope for limit in first] == ["client", "chat"]
    assert {limit.key for limit in first}.isdisjoint(limit.key for limit in second)
    assert limits.for_message("a", "telegram", "1")[1].key != limits.for_message("a", "test", "1")[1].key
    assert first[0].bucket == Bucket(120.0, 2.0)


def test_a_limit_set_to_zero_is_off() -> None:
    assert [limit.scope for limit in IntakeLimits.per_minute(client=0, chat=5).for_message("a", "p", "c")] == ["chat"]
    assert IntakeLimits.per_minute(client=0, chat=0).for_message("a", "p", "c") == []
    assert take([], {}, now=0.0) == (Decision.allow(), {})
