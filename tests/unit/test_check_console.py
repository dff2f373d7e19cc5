"""The console's lines of ``neiromatrius check``: its variables before deploy, its health after (against a
loopback server answering as a console would)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from neiromatrius.check import console
from tests.conftest import MakeReceiver
from tests.support.http_receiver import Reply


def lines(values: dict[str, str]) -> dict[str, tuple[bool, str]]:
    return {check.name: (check.ok, check.detail) for check in console.settings(values)}


def test_nothing_is_said_when_the_console_is_not_configured() -> None:
    assert console.settings({}) == []


def test_the_usual_values_pass() -> None:
    found = lines({"NEXT_PUBLIC_API_URL": "/api", "BACKEND_API_URL": "http://neiromatrius-api:8000"})
    assert found["NEXT_PUBLIC_API_URL"][0] and found["BACKEND_API_URL"][0]
    assert lines({"BACKEND_API_URL": "http://api:8000"})["NEXT_PUBLIC_API_URL"] == (
        True,
        "unset: the browser uses /api (the console passes it to the API)",
    )
    assert lines({"NEXT_PUBLIC_API_URL": "https://api.example.com", "BACKEND_API_URL": "http://api:8000"})[
        "NEXT_PUBLIC_API_URL"
    ][0]


@pytest.mark.parametrize(
    ("values", "name", "says"),
    [
        ({"NEXT_PUBLIC_API_URL": "/api"}, "BACKEND_API_URL", "unset"),
        ({"BACKEND_API_URL": "neiromatrius-api:8000"}, "BACKEND_API_URL", "not an http(s) URL"),
        ({"BACKEND_API_URL": "http://api:8000/api"}, "BACKEND_API_URL", "ends in /api"),
        ({"BACKEND_API_URL": "http://api:8000", "NEXT_PUBLIC_API_URL": "api"}, "NEXT_PUBLIC_API_URL", "neither"),
        ({"BACKEND_API_URL": "http://api:8000", "NEXT_PUBLIC_API_URL": "//evil"}, "NEXT_PUBLIC_API_URL", "neither"),
    ],
)
def test_a_wrong_value_is_named(values: dict[str, str], name: str, says: str) -> None:
    ok, detail = lines(values)[name]
    assert not ok and says in detail


def test_the_environment_wins_over_the_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("BACKEND_API_URL=http://from-file:8000\nNEXT_PUBLIC_API_URL=/api\nOTHER=x\n")
    values = console.read([env_file], {"BACKEND_API_URL": "http://from-env:8000", "PATH": "/bin"})
    assert values == {"BACKEND_API_URL": "http://from-env:8000", "NEXT_PUBLIC_API_URL": "/api"}


async def test_health_passes_when_the_console_reaches_the_api(receiver: MakeReceiver) -> None:
    json_ok = (("content-type", "application/json"),)
    server = await receiver(
        Reply(headers=json_ok, body=b'{"status":"ok","backend":"ok"}'),
        Reply(body=b'<form><input id="email"/><input id="password"/></form>'),
    )
    async with httpx.AsyncClient(timeout=5) as http:
        found = await console.health(http, f"http://127.0.0.1:{server.port}")
    assert [(c.name, c.ok) for c in found] == [("Console /health", True), ("Console sign-in", True)]


async def test_health_names_backend_api_url_when_the_console_cannot_reach_the_api(receiver: MakeReceiver) -> None:
    json_ok = (("content-type", "application/json"),)
    server = await receiver(
        Reply(headers=json_ok, body=b'{"status":"ok","backend":"unreachable"}'),
        Reply(status=500, body=b"Internal Server Error"),
    )
    async with httpx.AsyncClient(timeout=5) as http:
        found = await console.health(http, f"http://127.0.0.1:{server.port}")
    assert [(c.name, c.ok, c.variable) for c in found] == [
        ("Console /health", False, "BACKEND_API_URL"),
        ("Console sign-in", False, None),
    ]
