"""``/metrics`` on the API and on the listener's port: the series exist, and move as messages flow.

Both are real processes; the listener's OpenAI is a loopback server answering a canned completion
(so model latency and tokens are real HTTP calls), replies go to a loopback webhook receiver.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from neiromatrius_devstack.process import free_port
from tests.conftest import Stack
from tests.e2e.conftest import StartService, service_env
from tests.support import openai_mock
from tests.support.http_receiver import Receiver, Reply
from tests.support.waiting import eventually

StartApi = Callable[..., tuple[str, Any]]
MakeReceiver = Callable[..., Any]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scrape: Samples, name: str, **labels: str) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


def total(scrape: Samples, name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in scrape.items() if n == name and wanted <= ls)


async def scrape(http: httpx.AsyncClient, url: str, **headers: str) -> Samples:
    response = await http.get(f"{url}/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_metrics_on_the_api_and_the_listener_move_as_messages_flow(
    stack: Stack, api: StartApi, start_service: StartService, receiver: MakeReceiver, clean_clients: list[str]
) -> None:
    canned = openai_mock.answered().content
    model: Receiver = await receiver(Reply(headers=(("Content-Type", "application/json"),), body=canned))
    hook: Receiver = await receiver()
    api_url, _ = api()
    port = free_port()
    listener = start_service(
        "listener",
        service_env(
            stack,
            LISTENER_METRICS_PORT=str(port),
            OPENAI_API_KEY="sk-test",
            OPENAI_BASE_URL=model.url("/v1"),
        ),
    )
    await asyncio.to_thread(listener.wait_for_line, "/metrics and /health on")
    listener_url = f"http://127.0.0.1:{port}"
    client_id = f"metrics-{uuid.uuid4().hex[:10]}"
    clean_clients.append(client_id)

    async with httpx.AsyncClient(timeout=30) as http:
        api_before, listener_before = await scrape(http, api_url), await scrape(http, listener_url)
        for n in range(3):
            response = await http.post(
                f"{api_url}/api/messages/",
                headers={"X-Webhook-URL": hook.url(), "X-Platform": "test", "X-Chat-ID": f"chat-{n}"},
                json={"client_id": client_id, "content": "Привет! Тестовое сообщение"},
            )
            assert response.status_code == 200, response.text
        await hook.wait_for_requests(3)
        api_after = await scrape(http, api_url)
        # Deliveries are counted once the receiver has answered; wait for the third to be counted.
        delivered = "neiromatrius_delivery_attempts_total"
        wanted = total(listener_before, delivered, outcome="delivered") + 3

        async def three_more_counted() -> Samples | None:
            now = await scrape(http, listener_url)
            return now if total(now, delivered, outcome="delivered") >= wanted else None

        listener_after = await eventually(three_more_counted, 15, every=0.1)
        health = await http.get(f"{listener_url}/health")

    def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    route = {"method": "POST", "route": "/api/messages/"}
    assert moved(api_before, api_after, "neiromatrius_http_requests_total", status="200", **route) == 3
    assert moved(api_before, api_after, "neiromatrius_http_request_duration_seconds_count", **route) == 3
    assert moved(api_before, api_after, "neiromatrius_messages_received_total", platform="test", outcome="created") == 3
    assert value(api_after, "neiromatrius_queue_stats_up") == 1

    answered = {"state": "answered", "category": "greeting"}
    assert moved(listener_before, listener_after, "neiromatrius_messages_finished_total", **answered) == 3
    assert (
        moved(listener_before, listener_after, "neiromatrius_openai_request_duration_seconds_count", outcome="ok") == 3
    )
    assert moved(listener_before, listener_after, "neiromatrius_openai_tokens_total", kind="prompt") == 3 * 321
    assert moved(listener_before, listener_after, "neiromatrius_openai_tokens_total", kind="completion") == 3 * 54
    delivered = {"platform": "test", "outcome": "delivered"}
    assert moved(listener_before, listener_after, "neiromatrius_delivery_attempts_total", **delivered) == 3
    assert ("neiromatrius_oldest_pending_message_age_seconds", frozenset()) in listener_after
    assert ("neiromatrius_queue_messages", frozenset({("state", "pending")})) in listener_after
    assert value(listener_after, "neiromatrius_queue_stats_up") == 1
    assert len(model.requests) == 3
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok", "listener": "running"}


async def test_failed_deliveries_and_the_oldest_pending_age_are_reported(
    stack: Stack, api: StartApi, start_service: StartService, receiver: MakeReceiver, clean_clients: list[str]
) -> None:
    hook: Receiver = await receiver(Reply(status=500))
    api_url, _ = api()
    client_id = f"metrics-{uuid.uuid4().hex[:10]}"
    clean_clients.append(client_id)
    async with httpx.AsyncClient(timeout=30) as http:
        # No listener yet: the message waits, and the gauge says for how long.
        response = await http.post(
            f"{api_url}/api/messages/",
            headers={"X-Webhook-URL": hook.url(), "X-Platform": "test", "X-Chat-ID": "c", "Prefer": "respond-async"},
            json={"client_id": client_id, "content": "Где мой заказ?"},
        )
        assert response.status_code == 202
        waiting = await scrape(http, api_url)
        assert value(waiting, "neiromatrius_queue_messages", state="pending") >= 1
        assert value(waiting, "neiromatrius_oldest_pending_message_age_seconds") > 0

        port = free_port()
        listener = start_service("listener", service_env(stack, LISTENER_METRICS_PORT=str(port)))
        await asyncio.to_thread(listener.wait_for_line, "/metrics and /health on")
        await hook.wait_for_requests(2)

        async def two_failures_counted() -> Samples | None:
            now = await scrape(http, f"http://127.0.0.1:{port}")
            return (
                now
                if value(now, "neiromatrius_delivery_failures_total", platform="test", outcome="retry") >= 2
                else None
            )

        after = await eventually(two_failures_counted, 15, every=0.1)
    assert value(after, "neiromatrius_delivery_attempts_total", platform="test", outcome="retry") >= 2


async def test_metrics_want_the_token_when_one_is_set(api: StartApi) -> None:
    api_url, _ = api(METRICS_TOKEN="scrape-me")
    async with httpx.AsyncClient(timeout=30) as http:
        refused = await http.get(f"{api_url}/metrics")
        wrong = await http.get(f"{api_url}/metrics", headers={"Authorization": "Bearer nope"})
        allowed = await scrape(http, api_url, Authorization="Bearer scrape-me")
    assert (refused.status_code, wrong.status_code) == (401, 401)
    assert refused.json()["error"]["code"] == "unauthorized"
    assert total(allowed, "neiromatrius_http_requests_total", route="/metrics", status="401") == 2
