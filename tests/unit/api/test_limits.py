"""Body size and the intake key: both refuse before the store sees anything."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .conftest import MakeApi
from .harness import CHECKLIST_BODY, Api, headers

LIMIT = 1024
KEY = "intake-key-0123456789abcdef"


async def chunks(total: int, size: int = 256) -> AsyncIterator[bytes]:
    """A JSON body sent chunked (no Content-Length), ``total`` bytes long."""
    body = ('{"client_id":"c1","content":"' + "x" * total)[: total - 2] + '"}'
    for start in range(0, len(body), size):
        yield body[start : start + size].encode()


@pytest.fixture
async def small(make_api: MakeApi) -> Api:
    return await make_api(max_body_bytes=LIMIT)


async def test_a_declared_length_over_the_limit_is_413(small: Api) -> None:
    response = await small.post({**CHECKLIST_BODY, "content": "x" * LIMIT})

    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "payload_too_large",
        "message": f"the body must be at most {LIMIT} bytes",
        "field": "body",
    }
    assert small.store.intakes == []


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"X-Junk": "a" * 40_000}, id="one-huge-header"),
        pytest.param({f"X-Junk-{n}": "v" for n in range(120)}, id="too-many-headers"),
    ],
)
async def test_headers_over_the_limit_are_431_before_anything_is_read(small: Api, extra: dict[str, str]) -> None:
    response = await small.post(headers=headers() | extra)

    assert response.status_code == 431
    assert response.json()["error"]["code"] == "headers_too_large"
    assert response.json()["error"]["field"] == "headers"
    assert small.store.intakes == []


async def test_headers_within_the_limit_pass(small: Api) -> None:
    extra = {f"X-Extra-{n}": "v" * 200 for n in range(60)}
    response = await small.post(headers=headers(Prefer="respond-async") | extra)

    assert response.status_code in (200, 202), response.text


async def test_a_chunked_body_over_the_limit_is_413(small: Api) -> None:
    response = await small.post(content=chunks(LIMIT + 1))

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert small.store.intakes == []


async def test_a_chunked_body_within_the_limit_is_accepted(small: Api) -> None:
    response = await small.post(content=chunks(LIMIT), headers=headers(Prefer="respond-async"))

    assert response.status_code == 202
    assert len(small.store.intakes[0].content) == LIMIT - len('{"client_id":"c1","content":""}')


async def test_the_size_limit_comes_before_the_key(make_api: MakeApi) -> None:
    api = await make_api(max_body_bytes=LIMIT, intake_api_key=KEY)

    response = await api.post(content=chunks(LIMIT + 1))

    assert response.status_code == 413


@pytest.fixture
async def keyed(make_api: MakeApi) -> Api:
    return await make_api(intake_api_key=KEY)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-key", f"Basic {KEY}", f"Bearer {KEY}x", "Bearer", f"Bearer {KEY[:-1]}"],
)
async def test_a_missing_or_wrong_key_is_401(keyed: Api, authorization: str | None) -> None:
    response = await keyed.post(headers=headers(Authorization=authorization))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"
    assert keyed.store.intakes == []
    assert keyed.guard.checked == []


async def test_the_key_is_checked_before_the_headers(keyed: Api) -> None:
    response = await keyed.post(headers=headers(X_Platform=None))

    assert response.status_code == 401


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
async def test_the_right_key_is_let_in(keyed: Api, scheme: str) -> None:
    response = await keyed.post(headers=headers(Authorization=f"{scheme} {KEY}", Prefer="respond-async"))

    assert response.status_code == 202
    assert len(keyed.store.intakes) == 1


async def test_reading_a_message_needs_the_key_too(keyed: Api) -> None:
    view = keyed.store.add()

    refused = await keyed.client.get(f"/api/messages/{view.id}")
    allowed = await keyed.client.get(f"/api/messages/{view.id}", headers={"Authorization": f"Bearer {KEY}"})

    assert refused.status_code == 401
    assert allowed.status_code == 200


async def test_health_needs_no_key(keyed: Api) -> None:
    assert (await keyed.client.get("/health")).status_code == 200
    assert (await keyed.client.get("/api/health/db")).status_code == 200


async def test_the_size_limits_apply_to_every_operation_and_the_document_says_so(small: Api) -> None:
    response = await small.client.request("GET", "/health", content=b"x" * (LIMIT + 1))
    document = (await small.client.get("/openapi.json")).json()

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    operations = [operation for path in document["paths"].values() for operation in path.values()]
    assert all({"413", "431"} <= set(operation["responses"]) for operation in operations)
