"""The application around the endpoints: start-up, CORS, the error table and the access log."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from neiromatrius.api import ApiServices, create_app
from neiromatrius.errors import ResponderError, StoreUnavailable
from tests.support.fakes import FakeCache, FakeMessageIntake, FakeRateLimiter, FakeReplyWaiter, FakeUrlGuard

from .conftest import MakeApi
from .harness import CHECKLIST_BODY, ORIGIN, Api, headers, make_settings

STARTUP_LINES = [
    "Database connection established and responsive",
    "Redis cache connected",
    "on_startup",
    "Starting up application...",
]


class FlakyStore(FakeMessageIntake):
    """A database that answers only from the ``failures + 1``-th ping on."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def ping(self) -> None:
        self.pings += 1
        if self.pings <= self.failures:
            raise StoreUnavailable("connection refused")


def services(
    store: FakeMessageIntake, events: list[str], cache: str = "ok", startup_timeout: float = 5.0
) -> ApiServices:
    async def on_startup() -> None:
        logging.getLogger("tests.on_startup").info("on_startup")

    async def on_shutdown() -> None:
        events.append("on_shutdown")

    return ApiServices(
        store=store,
        waiter=FakeReplyWaiter(),
        url_guard=FakeUrlGuard(),
        limiter=FakeRateLimiter(),
        cache_status=FakeCache(cache),
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        startup_timeout=startup_timeout,
    )


def app_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The start-up lines, with the moment ``on_startup`` ran among them."""
    names = ("neiromatrius.api.app", "tests.on_startup")
    return [r.getMessage() for r in caplog.records if r.name in names and r.levelno >= logging.INFO]


async def test_start_up_logs_the_checklist_lines_in_order(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    events: list[str] = []
    app = create_app(make_settings(), services(FakeMessageIntake(), events))

    async with app.router.lifespan_context(app):
        assert app_lines(caplog) == STARTUP_LINES
        assert events == []

    assert events == ["on_shutdown"]


async def test_start_up_reports_the_cache_fallback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    app = create_app(make_settings(), services(FakeMessageIntake(), [], cache="unavailable"))

    async with app.router.lifespan_context(app):
        lines = app_lines(caplog)

    assert lines[:2] == [
        "Database connection established and responsive",
        "Redis cache unavailable, using in-memory fallback",
    ]
    assert lines[-1] == "Starting up application..."


async def test_start_up_waits_for_a_database_that_is_late(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    store = FlakyStore(failures=2)
    app = create_app(make_settings(), services(store, []))

    async with app.router.lifespan_context(app):
        assert store.pings == 3
        assert app_lines(caplog)[-len(STARTUP_LINES) :] == STARTUP_LINES


async def test_start_up_fails_with_a_clear_line_when_the_database_never_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    store = FlakyStore(failures=10**6)
    events: list[str] = []
    app = create_app(make_settings(), services(store, events, startup_timeout=0.2))

    with pytest.raises(StoreUnavailable, match="did not answer"):
        async with app.router.lifespan_context(app):
            pytest.fail("the app must not start without a database")

    assert store.pings > 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("Database connection failed")
    assert "Starting up application..." not in app_lines(caplog)
    assert events == []


PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type, x-webhook-url, x-platform, x-chat-id, idempotency-key, prefer",
}


async def test_a_preflight_from_an_allowed_origin_is_allowed(api: Api) -> None:
    response = await api.client.options("/api/messages/", headers={"Origin": ORIGIN, **PREFLIGHT})

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "X-Webhook-URL" in response.headers["Access-Control-Allow-Headers"]


async def test_a_preflight_from_another_origin_is_refused(api: Api) -> None:
    response = await api.client.options("/api/messages/", headers={"Origin": "https://evil.example", **PREFLIGHT})

    assert response.status_code == 400
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_a_cross_origin_answer_exposes_location(api: Api) -> None:
    response = await api.post(headers={**headers(Prefer="respond-async"), "Origin": ORIGIN})

    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Location" in response.headers["Access-Control-Expose-Headers"]


async def test_a_wildcard_origin_never_comes_with_credentials(make_api: MakeApi) -> None:
    api = await make_api(allowed_origins=["*"])

    response = await api.client.options("/health", headers={"Origin": "https://any.example", **PREFLIGHT})

    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


async def test_an_unknown_route_answers_in_the_error_shape(api: Api) -> None:
    response = await api.client.get("/nowhere")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not Found"}}


async def test_a_wrong_method_answers_in_the_error_shape(api: Api) -> None:
    response = await api.client.get("/api/messages/")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "POST"


@pytest.mark.parametrize("error", [RuntimeError("boom at /srv/app.py line 3"), ResponderError("model said boom")])
async def test_an_unexpected_error_is_a_generic_500_and_logged(
    make_api: MakeApi, caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    api = await make_api(raise_app_exceptions=False)
    api.store.intake_error = error

    response = await api.post()

    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "An internal error occurred."}}
    logged = [r for r in caplog.records if r.name == "neiromatrius.web.errors" and r.exc_info]
    assert logged and logged[0].exc_info is not None and logged[0].exc_info[1] is error


async def test_each_request_logs_one_line_without_secrets(make_api: MakeApi, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="neiromatrius.api.access")
    api = await make_api(intake_api_key="intake-key-0123456789abcdef")
    auth = {"Authorization": "Bearer intake-key-0123456789abcdef"}

    created = await api.client.post(
        "/api/messages/?token=query-secret", json=CHECKLIST_BODY, headers={**headers(Prefer="respond-async"), **auth}
    )
    await api.client.get("/health")

    lines = [r.getMessage() for r in caplog.records if r.name == "neiromatrius.api.access"]
    assert len(lines) == 2
    assert lines[0].startswith("POST /api/messages/ 202 ")
    assert lines[0].endswith(f" message={created.json()['id']}")
    assert lines[1].startswith("GET /health 200 ")
    for secret in ("Тестовое", "intake-key", "query-secret", "test_client_001"):
        assert secret not in "\n".join(lines)


async def test_the_access_log_counts_a_crash_as_500(make_api: MakeApi, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="neiromatrius.api.access")
    api = await make_api(raise_app_exceptions=False)
    api.store.get_error = RuntimeError("boom")
    view = api.store.add()

    await api.client.get(f"/api/messages/{view.id}")

    [line] = [r.getMessage() for r in caplog.records if r.name == "neiromatrius.api.access"]
    assert line.startswith(f"GET /api/messages/{view.id} 500 ")


async def test_a_client_that_leaves_mid_body_is_logged_not_crashed(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="neiromatrius.api.access")
    incoming = [{"type": "http.request", "body": b'{"client_id":', "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/api/messages/", "raw_path": b"/api/messages/", "query_string": b"", "root_path": "",
        "headers": [(b"transfer-encoding", b"chunked")], "client": ("127.0.0.1", 1), "server": ("testserver", 80),
    }  # fmt: skip
    await api.app(scope, receive, send)

    assert sent[0]["status"] == 499
    assert api.store.intakes == []
    [line] = [r.getMessage() for r in caplog.records if r.name == "neiromatrius.api.access"]
    assert line.startswith("POST /api/messages/ 499 ")
