"""GET /api/messages/{id}, /health and /api/health/db."""

from __future__ import annotations

import uuid

import pytest

from neiromatrius.core.models import MessageState
from neiromatrius.errors import StoreError, StoreUnavailable
from tests.support.fakes import CLASSIFICATION

from .conftest import MakeApi
from .harness import Api


async def test_an_answered_message_reads_back_whole(api: Api) -> None:
    view = api.store.add()
    api.store.answer(view.id, response="Добрый день!")

    response = await api.client.get(f"/api/messages/{view.id}")

    assert response.status_code == 200
    assert response.json() == {
        "id": view.id,
        "conversation_id": view.conversation_id,
        "state": "answered",
        "classification": CLASSIFICATION.model_dump(mode="json"),
        "response": "Добрый день!",
        "model": "offline-rules",
    }


async def test_a_pending_message_has_no_classification_or_reply_yet(api: Api) -> None:
    view = api.store.add()

    response = await api.client.get(f"/api/messages/{view.id.upper()}")

    assert response.status_code == 200
    assert response.json() == {
        "id": view.id,
        "conversation_id": view.conversation_id,
        "state": "pending",
        "classification": None,
        "response": None,
        "model": None,
    }


async def test_a_failed_message_shows_its_error(api: Api) -> None:
    view = api.store.add(MessageState.FAILED, last_error="model_unavailable")

    response = await api.client.get(f"/api/messages/{view.id}")

    assert response.json()["error"] == "model_unavailable"
    assert response.json()["response"] is None


@pytest.mark.parametrize("message_id", ["42", "not-a-uuid", "0" * 32, "{" + str(uuid.UUID(int=1)) + "}"])
async def test_an_id_that_is_not_a_uuid_is_404(api: Api, message_id: str) -> None:
    response = await api.client.get(f"/api/messages/{message_id}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_an_unknown_id_is_404(api: Api) -> None:
    response = await api.client.get(f"/api/messages/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No such message."}}


async def test_a_database_outage_while_reading_is_503(api: Api) -> None:
    api.store.get_error = StoreUnavailable("timeout")

    response = await api.client.get(f"/api/messages/{uuid.uuid4()}")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"


async def test_health_is_ok(api: Api) -> None:
    response = await api.client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


async def test_health_reports_the_cache_fallback(make_api: MakeApi) -> None:
    api = await make_api(cache_status="unavailable")

    response = await api.client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "unavailable"}


@pytest.mark.parametrize("error", [StoreUnavailable("down"), StoreError("odd"), OSError("reset")])
async def test_health_is_degraded_without_the_database(api: Api, error: Exception) -> None:
    api.store.ping_error = error

    response = await api.client.get("/health")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json() == {"status": "degraded", "database": "unavailable", "redis": "ok"}


async def test_database_health_is_connected(api: Api) -> None:
    response = await api.client.get("/api/health/db")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "connected"}


async def test_database_health_is_503_without_the_database(api: Api) -> None:
    api.store.ping_error = StoreUnavailable("down")

    response = await api.client.get("/api/health/db")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json() == {"status": "error", "database": "unavailable"}
