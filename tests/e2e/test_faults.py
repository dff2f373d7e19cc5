"""Faults end to end: OpenAI failing or answering badly, webhook receivers failing, redirecting or hanging,
and webhook URLs that point inside, each through the API process, a listener in this process (OpenAI
mocked with respx through its own httpx client), the local stack and loopback receivers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from standardwebhooks import Webhook

from neiromatrius.adapters.webhooks import webhook_secret
from neiromatrius.config import Settings
from tests.e2e.conftest import running_listener
from tests.support import openai_mock
from tests.support.http_receiver import Receiver, Reply
from tests.support.waiting import eventually

BOUND = 15.0
StartApi = Callable[..., tuple[str, Any]]
MakeReceiver = Callable[..., Any]


def faulty_settings(e2e_settings: Settings, **update: Any) -> Settings:
    """The e2e settings with OpenAI pointed at the respx mock (so the OpenAI responder is used)."""
    base = {"openai_base_url": openai_mock.BASE_URL, "openai_api_key": SecretStr("sk-test")}
    return e2e_settings.model_copy(update=base | update)


def new_client(clean_clients: list[str]) -> str:
    client_id = f"faults-{uuid.uuid4().hex[:12]}"
    clean_clients.append(client_id)
    return client_id


async def post_message(
    http: httpx.AsyncClient, api_url: str, client_id: str, webhook_url: str, chat_id: str = "chat-1"
) -> str:
    """POST a message with ``Prefer: respond-async``; return its id (the test does not wait on the answer)."""
    headers = {"X-Webhook-URL": webhook_url, "X-Platform": "test", "X-Chat-ID": chat_id, "Prefer": "respond-async"}
    response = await http.post(
        f"{api_url}/api/messages/", headers=headers, json={"client_id": client_id, "content": "Где мой заказ?"}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def finished(db: asyncpg.Connection, message_id: str) -> asyncpg.Record:
    """The inbound message once it has left pending/processing."""

    async def check() -> asyncpg.Record | None:
        row = await db.fetchrow(
            "select state, last_error from messages where id = $1 and state not in ('pending', 'processing')",
            uuid.UUID(message_id),
        )
        return row

    result: asyncpg.Record = await eventually(check, BOUND)
    return result


async def reply_in(db: asyncpg.Connection, message_id: str, states: Iterable[str]) -> asyncpg.Record:
    """The message's reply once its delivery is in one of ``states``."""

    async def check() -> asyncpg.Record | None:
        row = await db.fetchrow(
            "select * from replies where message_id = $1 and delivery_state = any($2::text[])",
            uuid.UUID(message_id),
            list(states),
        )
        return row

    result: asyncpg.Record = await eventually(check, BOUND)
    return result


async def attempt_log(db: asyncpg.Connection, reply_id: uuid.UUID) -> list[asyncpg.Record]:
    return await db.fetch(
        "select id, attempt, outcome, status_code, error, webhook_id from delivery_attempts"
        " where reply_id = $1 order by attempt",
        reply_id,
    )


async def replies_of(db: asyncpg.Connection, message_id: str) -> int:
    count: int = await db.fetchval("select count(*) from replies where message_id = $1", uuid.UUID(message_id))
    return count


# --- OpenAI faults --------------------------------------------------------------------------------


async def test_a_rate_limit_with_retry_after_is_retried_and_the_reply_delivered(
    api: StartApi, e2e_settings: Settings, receiver: MakeReceiver, db: asyncpg.Connection, clean_clients: list[str]
) -> None:
    api_url, _ = api()
    hook: Receiver = await receiver()
    client_id = new_client(clean_clients)
    with openai_mock.mocked_openai() as openai_route:
        openai_route.side_effect = [
            openai_mock.error(429, "rate_limit_exceeded", {"retry-after": "0.1"}),
            openai_mock.answered(),
        ]
        async with running_listener(faulty_settings(e2e_settings)), httpx.AsyncClient(timeout=30) as http:
            message_id = await post_message(http, api_url, client_id, hook.url())
            [delivery] = await hook.wait_for_requests(1, BOUND)
            message = await finished(db, message_id)
            reply = await reply_in(db, message_id, ["delivered"])

    assert (message["state"], message["last_error"]) == ("answered", None)
    assert openai_route.call_count == 2
    assert reply["content"] == openai_mock.answer()["reply"]
    assert json.loads(delivery.body)["data"]["response"] == openai_mock.answer()["reply"]
    assert len(hook.requests) == 1


async def test_insufficient_quota_fails_the_message_at_once_and_sends_nothing(
    api: StartApi, e2e_settings: Settings, receiver: MakeReceiver, db: asyncpg.Connection, clean_clients: list[str]
) -> None:
    api_url, _ = api()
    hook: Receiver = await receiver()
    client_id = new_client(clean_clients)
    with openai_mock.mocked_openai() as openai_route:
        openai_route.mock(return_value=openai_mock.error(429, "insufficient_quota"))
        async with running_listener(faulty_settings(e2e_settings)), httpx.AsyncClient(timeout=30) as http:
            message_id = await post_message(http, api_url, client_id, hook.url())
            message = await finished(db, message_id)

    assert message["state"] == "failed"
    assert message["last_error"].startswith("insufficient_quota")
    assert openai_route.call_count == 1
    assert await replies_of(db, message_id) == 0
    assert (hook.connections, hook.requests) == (0, [])


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        pytest.param({"return_value": openai_mock.error(500, "server_error")}, "status 500", id="500-every-time"),
        pytest.param({"side_effect": httpx.ReadTimeout}, "timeout", id="read-timeout-every-time"),
    ],
)
async def test_a_model_that_keeps_failing_fails_the_message_after_the_configured_retries(
    fault: dict[str, Any],
    reason: str,
    api: StartApi,
    e2e_settings: Settings,
    receiver: MakeReceiver,
    db: asyncpg.Connection,
    clean_clients: list[str],
) -> None:
    api_url, _ = api()
    hook: Receiver = await receiver()
    client_id = new_client(clean_clients)
    settings = faulty_settings(e2e_settings, openai_max_retries=2)
    with openai_mock.mocked_openai() as openai_route:
        openai_route.mock(**fault)
        async with running_listener(settings), httpx.AsyncClient(timeout=30) as http:
            message_id = await post_message(http, api_url, client_id, hook.url())
            message = await finished(db, message_id)

    assert message["state"] == "failed"
    assert message["last_error"].startswith("model_unavailable")
    assert f"(last: {reason})" in message["last_error"]
    assert openai_route.call_count == 1 + settings.openai_max_retries
    assert await replies_of(db, message_id) == 0
    assert (hook.connections, hook.requests) == (0, [])


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param(
            openai_mock.completion("Sure! Your order ships tomorrow."), "unusable_answer: invalid_json", id="not-json"
        ),
        pytest.param(openai_mock.completion(None, refusal="I can't help"), "unusable_answer: refused", id="refusal"),
        pytest.param(
            openai_mock.completion('{"category": "order_status", "rep', finish_reason="length"),
            "unusable_answer: truncated",
            id="truncated",
        ),
    ],
)
async def test_an_unusable_answer_goes_to_a_human_and_nothing_is_sent(
    answer: httpx.Response,
    reason: str,
    api: StartApi,
    e2e_settings: Settings,
    receiver: MakeReceiver,
    db: asyncpg.Connection,
    clean_clients: list[str],
) -> None:
    api_url, _ = api()
    hook: Receiver = await receiver()
    client_id = new_client(clean_clients)
    with openai_mock.mocked_openai() as openai_route:
        openai_route.mock(return_value=answer)
        async with running_listener(faulty_settings(e2e_settings)), httpx.AsyncClient(timeout=30) as http:
            message_id = await post_message(http, api_url, client_id, hook.url())
            message = await finished(db, message_id)
            read_back = await http.get(f"{api_url}/api/messages/{message_id}")

    assert (message["state"], message["last_error"]) == ("handoff", reason)
    assert openai_route.call_count == 1
    # No reply row, no outbound message: the model's text goes nowhere, and the caller sees why.
    assert await replies_of(db, message_id) == 0
    outbound = await db.fetchval(
        "select count(*) from messages where client_id = $1 and direction = 'outbound'", client_id
    )
    assert outbound == 0
    assert read_back.status_code == 200
    body = read_back.json()
    assert (body["state"], body["response"], body["error"]) == ("handoff", None, reason)
    assert (hook.connections, hook.requests) == (0, [])


# --- Webhook faults -------------------------------------------------------------------------------


async def test_a_failed_delivery_is_retried_with_the_same_webhook_id_and_a_fresh_signature(
    api: StartApi, e2e_settings: Settings, receiver: MakeReceiver, db: asyncpg.Connection, clean_clients: list[str]
) -> None:
    api_url, _ = api()
    hook: Receiver = await receiver(Reply(500), Reply(200))
    client_id = new_client(clean_clients)
    settings = faulty_settings(e2e_settings)
    with openai_mock.mocked_openai() as openai_route:
        openai_route.mock(return_value=openai_mock.answered())
        async with running_listener(settings), httpx.AsyncClient(timeout=30) as http:
            message_id = await post_message(http, api_url, client_id, hook.url())
            first, second = await hook.wait_for_requests(2, BOUND)
            reply = await reply_in(db, message_id, ["delivered", "failed", "stopped"])

    assert (reply["delivery_state"], reply["delivery_attempts"]) == ("delivered", 2)
    assert len(hook.requests) == 2
    reply_id = str(reply["id"])
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == reply_id
    # Each attempt is signed anew: both verify (the library rejects timestamps more than 5 minutes off).
    signer = Webhook(webhook_secret(settings))
    assert signer.verify(first.body, first.headers) == signer.verify(second.body, second.headers)
    assert int(second.headers["webhook-timestamp"]) >= int(first.headers["webhook-timestamp"])
    log = await attempt_log(db, reply["id"])
    assert [(a["attempt"], a["outcome"], a["status_code"], a["webhook_id"]) for a in log] == [
        (1, "retry", 500, reply_id),
        (2, "delivered", 200, reply_id),
    ]


async def test_a_410_stops_delivery_for_good(
    api: StartApi, e2e_settings: Settings, receiver: MakeReceiver, db: asyncpg.Connection, clean_clients: list[str]
) -> None:
    api_url, _ = api()
    gone: Receiver = await receiver(Reply(410))
    # The control needs two retries itself, so by the time it is delivered the delivery loop has
    # run past the moment a retry of the 410 reply would have been due (one 0.2 s step).
    control: Receiver = await receiver(Reply(500), Reply(500), Reply(200))
    client_id = new_client(clean_clients)
    with openai_mock.mocked_openai() as openai_route:
        openai_route.mock(return_value=openai_mock.answered())
        async with running_listener(faulty_settings(e2e_settings)), httpx.AsyncClient(timeout=30) as http:
            gone_message = await post_message(http, api_url, client_id, gone.url(), chat_id="gone")
            stopped = await reply_in(db, gone_message, ["stopped", "delivered", "failed"])
            control_message = await post_message(http, api_url, client_id, control.url(), chat_id="control")
            await control.wait_for_requests(3, BOUND)
            await reply_in(db, control_message, ["delivered"])

    assert stopped["delivery_state"] == "stopped"
    assert (gone.connections, len(gone.requests)) == (1, 1)
    log = await attempt_log(db, stopped["id"])
    assert [(a["outcome"], a["status_code"]) for a in log] == [("stopped", 410)]
    final = await db.fetchrow("select delivery_state, next_attempt_at from replies where id = $1", stopped["id"])
    assert final is not None and (final["delivery_state"], final["next_attempt_at"]) == ("stopped", None)


async def test_a_redirect_is_not_followed_and_counts_as_a_failed_attempt(
    api: StartApi, e2e_settings: Settings, receiver: MakeReceiver, db: asyncpg.Connection, clean_clients: list[str]
) -> None:
    api_url, _ = api()
    canary: Receiver = await receiver()
    redirecting: Receiver = await receiver(Reply(302, headers=(("Location", canary.url("/stolen")),)))
    client_id = new_client(clean_clients)
    settings = faulty_settings(e2e_settings)
    attempts = 1 + len(settings.webhook_retry_schedule)
    with openai_mock.mocked_openai() as openai_route:
        openai_route.mock(return_value=openai_mock.answered())
        async with running_listener(settings), httpx.AsyncClient(timeout=30) as http:
            message_id = await post_message(http, api_url, client_id, redirecting.url())
            reply = await reply_in(db, message_id, ["delivered", "failed", "stopped"])

    assert (reply["delivery_state"], reply["delivery_attempts"]) == ("failed", attempts)
    log = await attempt_log(db, reply["id"])
    assert [(a["outcome"], a["status_code"]) for a in log] == [("retry", 302)] * (attempts - 1) + [("failed", 302)]
    assert all("redirects are not followed" in a["error"] for a in log)
    assert len(redirecting.requests) == attempts
    assert {r.headers["webhook-id"] for r in redirecting.requests} == {str(reply["id"])}
    assert (canary.connections, canary.requests) == (0, [])


async def test_a_receiver_that_never_answers_times_out_without_holding_up_other_conversations(
    api: StartApi, e2e_settings: Settings, receiver: MakeReceiver, db: asyncpg.Connection, clean_clients: list[str]
) -> None:
    api_url, _ = api()
    hanging: Receiver = await receiver(Reply(hang=True))
    healthy: Receiver = await receiver()
    client_id = new_client(clean_clients)
    # Each attempt hangs for a second, longer than a sweep interval (0.5 s): the other message gets through
    # within one hanging attempt even if its Realtime event were missed, unless delivery waits for the hang.
    settings = faulty_settings(e2e_settings, webhook_timeout_seconds=1.0, webhook_retry_schedule=(0.2, 0.2))
    attempts = 1 + len(settings.webhook_retry_schedule)
    with openai_mock.mocked_openai() as openai_route:
        openai_route.mock(return_value=openai_mock.answered())
        async with running_listener(settings), httpx.AsyncClient(timeout=30) as http:
            stuck_message = await post_message(http, api_url, client_id, hanging.url(), chat_id="stuck")
            await hanging.wait_for_requests(1, BOUND)
            # While that first attempt hangs, another conversation's reply goes out.
            other_message = await post_message(http, api_url, client_id, healthy.url(), chat_id="other")
            await healthy.wait_for_requests(1, BOUND)
            delivered = await reply_in(db, other_message, ["delivered"])
            stuck = await reply_in(db, stuck_message, ["delivered", "failed", "stopped"])

    other_log = await attempt_log(db, delivered["id"])
    stuck_log = await attempt_log(db, stuck["id"])
    # The delivery log is ordered: the other reply was delivered before the first hanging attempt ended.
    assert [(a["outcome"], a["status_code"]) for a in other_log] == [("delivered", 200)]
    assert other_log[0]["id"] < stuck_log[0]["id"]
    assert (stuck["delivery_state"], stuck["delivery_attempts"]) == ("failed", attempts)
    assert [(a["outcome"], a["status_code"]) for a in stuck_log] == [("retry", None)] * (attempts - 1) + [
        ("failed", None)
    ]
    assert all(a["error"].startswith("timeout: no answer within 1 s") for a in stuck_log)
    assert len(hanging.requests) == attempts
    assert len(healthy.requests) == 1


# --- SSRF at intake -------------------------------------------------------------------------------


async def test_webhook_urls_pointing_inside_are_refused_at_intake_and_never_dialled(
    api: StartApi, receiver: MakeReceiver, db: asyncpg.Connection, clean_clients: list[str]
) -> None:
    api_url, _ = api(ALLOW_PRIVATE_WEBHOOKS="false")
    canary: Receiver = await receiver()
    port = canary.port
    refused = [
        f"http://127.0.0.1:{port}/hook",
        f"http://localhost:{port}/hook",
        "http://169.254.169.254/latest/meta-data/",
        f"http://2130706433:{port}/",
        f"http://0x7f.0.0.1:{port}/",
        f"http://0177.0.0.1:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",
        f"http://[::1]:{port}/hook",
        "http://100.100.100.200/latest/meta-data/",
        "http://user:pass@example.com/",
        "ftp://example.com/x",
    ]
    # A control: the same request with a public address is accepted, so the URL alone is refused.
    accepted = "http://93.184.215.14/hook"
    outcomes = []
    async with httpx.AsyncClient(timeout=30) as http:
        for url in [*refused, accepted]:
            client_id = new_client(clean_clients)
            headers = {"X-Webhook-URL": url, "X-Platform": "test", "X-Chat-ID": "chat-1", "Prefer": "respond-async"}
            response = await http.post(
                f"{api_url}/api/messages/", headers=headers, json={"client_id": client_id, "content": "Привет"}
            )
            field = response.json().get("error", {}).get("field") if response.status_code >= 400 else None
            messages = await db.fetchval("select count(*) from messages where client_id = $1", client_id)
            clients = await db.fetchval("select count(*) from clients where id = $1", client_id)
            outcomes.append((url, response.status_code, field, messages, clients))

    assert outcomes == [(url, 422, "X-Webhook-URL", 0, 0) for url in refused] + [(accepted, 202, None, 1, 1)]
    assert (canary.connections, canary.requests) == (0, [])
