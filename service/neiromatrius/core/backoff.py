"""``Backoff``: the one retry policy of the service, capped exponential delays (first, twice that, … up to a ceiling).

Every retry loop (waiting for the database at start-up, the listener's claims and delivery rounds, the
triage's store writes, the model calls, Telegram polling, Redis recovery) takes its pauses from here;
each loop keeps its own way of waiting (a deadline, a stop event, an injected sleep for tests).
"""

from __future__ import annotations

# Past 2**32 times first the ceiling has long been reached; stopping the exponent there keeps floats finite.
_MAX_DOUBLINGS = 32


def exponential(first: float, ceiling: float, failures: int) -> float:
    """The pause after ``failures + 1`` failures in a row: ``first`` after the first, doubling to ``ceiling``."""
    return min(first * 2.0 ** min(failures, _MAX_DOUBLINGS), ceiling)


class Backoff:
    """The pauses of one retry loop: ``next()`` after each failure, ``reset()`` after a success."""

    def __init__(self, first: float, ceiling: float) -> None:
        self.first = first
        self.ceiling = ceiling
        self.failures = 0

    def next(self) -> float:
        """The pause to take now; the one after it is twice as long (up to the ceiling)."""
        pause = exponential(self.first, self.ceiling, self.failures)
        self.failures += 1
        return pause

    def reset(self) -> None:
        """After a success: the next failure starts again at ``first``."""
        self.failures = 0
