"""Start-up lines as the checklist shows them: with their icons on a terminal, as plain JSON text off one."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from neiromatrius import logs
from neiromatrius.api import create_app
from tests.support.fakes import FakeCache, FakeMessageIntake, FakeRateLimiter, FakeReplyWaiter, FakeUrlGuard

from .api.harness import make_settings

CHECKLIST_TTY = [
    "✅ Database connection established and responsive",
    "⚠️ Redis cache unavailable, using in-memory fallback",
    "🚀 Starting up application...",
]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """``logs.configure`` replaces the root logger's handlers: put the test run's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


async def start_up(cache: str) -> None:
    from neiromatrius.api import ApiServices

    services = ApiServices(
        store=FakeMessageIntake(),
        waiter=FakeReplyWaiter(),
        url_guard=FakeUrlGuard(),
        limiter=FakeRateLimiter(),
        cache_status=FakeCache(cache),
    )
    app = create_app(make_settings(), services)
    async with app.router.lifespan_context(app):
        pass


def start_up_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "neiromatrius.api.app" in line][:3]  # then the shutdown


async def test_on_a_terminal_the_start_up_lines_carry_the_checklist_icons(
    root_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    logs.configure("INFO")
    await start_up(cache="unavailable")

    lines = start_up_lines(terminal.getvalue())
    assert [line.split("neiromatrius.api.app: ", 1)[1] for line in lines] == CHECKLIST_TTY


async def test_on_a_terminal_a_connected_redis_gets_a_tick(
    root_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    logs.configure("INFO")
    await start_up(cache="ok")

    assert "neiromatrius.api.app: ✅ Redis cache connected" in terminal.getvalue()


async def test_off_a_terminal_json_lines_keep_the_message_text_without_icons(
    root_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    logs.configure("INFO")
    await start_up(cache="unavailable")

    entries = [json.loads(line) for line in pipe.getvalue().splitlines()]
    app_entries = [entry for entry in entries if entry["logger"] == "neiromatrius.api.app"][:3]
    messages = [entry["message"] for entry in app_entries]
    assert messages == [line.split(" ", 1)[1] for line in CHECKLIST_TTY]
    assert all("icon" not in entry for entry in entries)
    assert [entry["level"] for entry in app_entries] == [
        "info",
        "warning",
        "info",
    ]


def test_the_icon_does_not_leak_into_other_handlers_of_the_same_record() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "Starting up %s", ("application...",), None)
    record.icon = "🚀"
    console = logs.ConsoleFormatter().format(record)
    assert console.endswith("x: 🚀 Starting up application...")
    assert json.loads(logs.JsonFormatter().format(record))["message"] == "Starting up application..."
