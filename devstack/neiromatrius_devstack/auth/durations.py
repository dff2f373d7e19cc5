"""Go's ``time.ParseDuration`` (``ban_duration`` takes "24h", "1h30m", "300ms", or "none")."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> timedelta:
    """A Go duration string as a ``timedelta``; ``ValueError`` with Go's message when it is not one."""
    sign, rest = (-1.0, text[1:]) if text.startswith("-") else (1.0, text.removeprefix("+"))
    if rest == "0":
        return timedelta(0)
    seconds, position = 0.0, 0
    while position < len(rest):
        match = _PART.match(rest, position)
        if match is None:
            raise ValueError(f'time: invalid duration "{text}"')
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not rest:
        raise ValueError(f'time: invalid duration "{text}"')
    return timedelta(seconds=sign * seconds)
