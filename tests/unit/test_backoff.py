"""The one retry policy: capped doubling, restarted by a success."""

from __future__ import annotations

import math

from neiromatrius.core.backoff import Backoff, exponential


def test_pauses_double_from_the_first_up_to_the_ceiling() -> None:
    backoff = Backoff(0.25, 4.0)

    assert [backoff.next() for _ in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_a_success_starts_the_pauses_again_at_the_first() -> None:
    backoff = Backoff(1.0, 30.0)
    backoff.next(), backoff.next()

    backoff.reset()

    assert backoff.next() == 1.0


def test_a_loop_that_fails_for_ever_keeps_a_finite_pause() -> None:
    assert exponential(0.5, 10.0, 10_000) == 10.0
    assert math.isfinite(exponential(0.5, math.inf, 10_000))
