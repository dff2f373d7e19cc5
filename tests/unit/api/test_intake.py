"""POST /api/messages/: the answer a platform gets, and what reaches the store."""

from __future__ import annotations

import asyncio
import hashlib
import json

import httpx
import pytest

from neiromatrius.core.models import MessageState
from neiromatrius.errors import StoreError, StoreUnavailable
from tests.support.fakes import CLASSIFICATION

from .conftest import MakeApi
from .harness import CHECKLIST_BODY, Api, headers

WAIT_BOUND = 5.0  # seconds a test waits for the API to reach the waiter before it fails


async def answer_while_waiting(api: Api, request: asyncio.Task[httpx.Response]) -> httpx.Response:
    """Play the listener: once the API waits on a message, answer it and wake the waiter."""
    message_id = await asyncio.wait_for(api.waiter.waiting.get(), WAIT_BOUND)
    api.store.answer(message_id)
    api.waiter.complete(message_id)
    return await request


async def test_the_checklist_request_is_answered_with_classification_and_reply(api: Api) -> None:
    response = await answer_while_waiting(api, asyncio.create_task(api.post()))

    assert response.status_code == 200
    body = response.json()
    message_id = body["id"]
    assert list(api.store.views) == [message_id]
    assert body == {
        "id": message_id,
        "conversation_id": api.store.views[message_id].conversation_id,
        "state": "answered",
        "classification": CLASSIFICATION.model_dump(mode="json"),
        "response": "Здравствуйте! Чем могу помочь?",
        "model": "offline-rules",
    }
    assert api.waiter.calls == [(message_id, 25.0)]
    assert api.guard.checked == ["https://test-webhook.com/test"]


async def test_the_store_receives_the_validated_message(api: Api) -> None:
    await api.post(headers=headers(Prefer="respond-async"))

    [incoming] = api.store.intakes
    assert incoming.client_id == "test_client_001"
    assert incoming.platform == "test"
    assert incoming.chat_id == "test-123"
    assert incoming.content == "Привет! Тестовое сообщение"
    assert incoming.webhook_url == "https://test-webhook.com/test"
    assert incoming.idempotency_key is None
    assert incoming.platform_message_id is None
    canonical = json.dumps(
        ["test_client_001", "test", "test-123", "Привет! Тестовое сообщение", "https://test-webhook.com/test", None],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert incoming.fingerprint == hashlib.sha256(canonical.encode()).hexdigest()


async def test_the_path_without_a_slash_is_served_without_a_redirect(api: Api) -> None:
    response = await api.post(path="/api/messages", headers=headers(Prefer="respond-async"))

    assert response.status_code == 202
    assert len(api.store.intakes) == 1


async def test_respond_async_answers_202_at_once_with_location(api: Api) -> None:
    response = await api.post(headers=headers(Prefer="respond-async"))

    assert response.status_code == 202
    body = response.json()
    assert body == {
        "id": body["id"],
        "conversation_id": api.store.views[body["id"]].conversation_id,
        "state": "pending",
    }
    assert response.headers["Location"] == f"/api/messages/{body['id']}"
    assert response.headers["Preference-Applied"] == "respond-async"
    assert api.waiter.calls == []


@pytest.mark.parametrize("prefer", ["wait=10, respond-async", "RESPOND-ASYNC", 'foo="a,b", respond-async; x=1'])
async def test_respond_async_is_found_among_other_preferences(api: Api, prefer: str) -> None:
    response = await api.post(headers=headers(Prefer=prefer))

    assert response.status_code == 202
    assert response.headers["Preference-Applied"] == "respond-async"


async def test_respond_async_is_found_in_a_second_prefer_header(api: Api) -> None:
    request_headers = [*headers().items(), ("Prefer", "return=minimal"), ("Prefer", "respond-async")]
    response = await api.post(headers=request_headers)

    assert response.status_code == 202
    assert api.waiter.calls == []


async def test_with_no_wait_configured_the_answer_is_202_without_preference_applied(make_api: MakeApi) -> None:
    api = await make_api(reply_wait_seconds=0)

    response = await api.post()

    assert response.status_code == 202
    assert "Preference-Applied" not in response.headers
    assert response.headers["Location"] == f"/api/messages/{response.json()['id']}"
    assert api.waiter.calls == []


async def test_a_reply_that_is_not_ready_in_time_gives_202(api: Api) -> None:
    request = asyncio.create_task(api.post())
    message_id = await asyncio.wait_for(api.waiter.waiting.get(), WAIT_BOUND)
    api.store.set_state(message_id, MessageState.PROCESSING)
    api.waiter.time_out(message_id)
    response = await request

    assert response.status_code == 202
    assert response.json() == {
        "id": message_id,
        "conversation_id": api.store.views[message_id].conversation_id,
        "state": "processing",
    }
    assert response.headers["Location"] == f"/api/messages/{message_id}"
    assert "Preference-Applied" not in response.headers


@pytest.mark.parametrize("state", [MessageState.FAILED, MessageState.HANDOFF])
async def test_a_message_that_ends_without_a_reply_says_why(api: Api, state: MessageState) -> None:
    request = asyncio.create_task(api.post())
    message_id = await asyncio.wait_for(api.waiter.waiting.get(), WAIT_BOUND)
    api.store.set_state(message_id, state, last_error="insufficient_quota")
    api.waiter.complete(message_id)
    response = await request

    assert response.status_code == 200
    body = response.json()
    assert body["state"] == state.value
    assert body["response"] is None
    assert body["classification"] is None
    assert body["error"] == "insufficient_quota"


async def test_a_retry_with_the_same_key_answers_for_the_same_message(api: Api) -> None:
    keyed = headers(Idempotency_Key="order-7f3a9c21-retry", Prefer="respond-async")
    first = await api.post(headers=keyed)
    second = await api.post(headers=keyed)

    assert first.status_code == second.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    assert [m.idempotency_key for m in api.store.intakes] == ["order-7f3a9c21-retry"] * 2
    assert api.store.intakes[0].fingerprint == api.store.intakes[1].fingerprint
    assert len(api.store.views) == 1


async def test_a_retry_of_an_answered_message_gets_200_without_waiting(api: Api) -> None:
    keyed = headers(Idempotency_Key="order-7f3a9c21-retry")
    first = await answer_while_waiting(api, asyncio.create_task(api.post(headers=keyed)))
    waits = len(api.waiter.calls)

    second = await api.post(headers=keyed)

    assert second.status_code == 200
    assert second.json() == first.json()
    assert len(api.waiter.calls) == waits


async def test_a_key_reused_with_another_body_is_a_conflict(api: Api) -> None:
    keyed = headers(Idempotency_Key="order-7f3a9c21-retry", Prefer="respond-async")
    await api.post(headers=keyed)

    response = await api.post({**CHECKLIST_BODY, "content": "Другое сообщение"}, headers=keyed)

    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "idempotency_key_reused",
        "message": response.json()["error"]["message"],
        "field": "Idempotency-Key",
    }
    assert len(api.store.views) == 1


async def test_the_platform_is_lower_cased_and_the_message_id_kept(api: Api) -> None:
    body = {**CHECKLIST_BODY, "message_id": "tg-5521", "unknown": {"ignored": True}}
    response = await api.post(body, headers=headers(X_Platform="Telegram", Prefer="respond-async"))

    assert response.status_code == 202
    [incoming] = api.store.intakes
    assert incoming.platform == "telegram"
    assert incoming.platform_message_id == "tg-5521"


async def test_a_null_message_id_counts_as_absent(api: Api) -> None:
    response = await api.post({**CHECKLIST_BODY, "message_id": None}, headers=headers(Prefer="respond-async"))

    assert response.status_code == 202
    assert api.store.intakes[0].platform_message_id is None


async def test_content_keeps_newlines_and_tabs_and_may_reach_the_limit(make_api: MakeApi) -> None:
    api = await make_api(max_content_chars=12)

    response = await api.post({**CHECKLIST_BODY, "content": "a\r\nb\tc d e f"}, headers=headers(Prefer="respond-async"))

    assert response.status_code == 202
    assert api.store.intakes[0].content == "a\r\nb\tc d e f"


async def test_a_database_outage_during_intake_is_503_with_retry_after(api: Api) -> None:
    api.store.intake_error = StoreUnavailable("connection refused to db.internal:5432")

    response = await api.post()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    error = response.json()["error"]
    assert error["code"] == "database_unavailable"
    assert "db.internal" not in error["message"]


async def test_any_store_error_after_intake_is_503_not_200(api: Api) -> None:
    api.store.get_error = StoreError("PGRST301")
    request = asyncio.create_task(api.post())
    message_id = await asyncio.wait_for(api.waiter.waiting.get(), WAIT_BOUND)
    api.waiter.complete(message_id)
    response = await request

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "store_error"
