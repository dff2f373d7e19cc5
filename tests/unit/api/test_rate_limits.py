"""Rate limits on POST /api/messages/: 429 with Retry-After and nothing stored; what spends a token and what
does not; the answer as the OpenAPI document describes it."""

from __future__ import annotations

import httpx
import pytest

from neiromatrius.api.routes import whole_seconds

from .conftest import MakeApi
from .harness import CHECKLIST_BODY, Api, headers
from .test_openapi import conforms, deref, fetch

ASYNC = headers(Prefer="respond-async")


def in_chat(chat: str, **changes: str | None) -> dict[str, str | bytes]:
    return headers(Prefer="respond-async", X_Chat_ID=chat, **changes)


async def statuses(api: Api, count: int, **kwargs: object) -> list[int]:
    return [(await api.post(**kwargs)).status_code for _ in range(count)]  # type: ignore[arg-type]


def assert_rate_limited(response: httpx.Response, scope: str, retry_after: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == retry_after
    assert response.json() == {
        "error": {"code": "rate_limited", "message": response.json()["error"]["message"], "scope": scope}
    }
    assert scope in response.json()["error"]["message"]


async def test_over_the_chat_limit_the_answer_is_429_and_nothing_is_stored(make_api: MakeApi) -> None:
    api = await make_api(rate_limit_chat_per_minute=2)

    accepted = await statuses(api, 2, headers=ASYNC)
    refused = await api.post(headers=ASYNC)

    assert accepted == [202, 202]
    assert_rate_limited(refused, "chat", "30")  # 2 a minute: a token every 30 s
    assert len(api.store.intakes) == 2
    assert len(api.guard.checked) == 2  # no DNS lookup for a refused request either


async def test_another_chat_of_the_client_passes_until_the_client_limit(make_api: MakeApi) -> None:
    api = await make_api(rate_limit_client_per_minute=3, rate_limit_chat_per_minute=2)

    chat_a = await statuses(api, 3, headers=in_chat("a"))
    chat_b = [await api.post(headers=in_chat("b")) for _ in range(2)]

    assert chat_a == [202, 202, 429]
    assert chat_b[0].status_code == 202  # the refused third in chat a did not spend the client's token
    assert_rate_limited(chat_b[1], "client", "20")  # 3 a minute: a token every 20 s
    assert len(api.store.intakes) == 3


async def test_the_bucket_refills_after_retry_after(make_api: MakeApi) -> None:
    api = await make_api(rate_limit_chat_per_minute=7)
    await statuses(api, 7, headers=ASYNC)
    refused = await api.post(headers=ASYNC)

    assert refused.headers["Retry-After"] == "9"  # 60/7 = 8.57 s, rounded up
    api.limiter.advance(8.5)
    assert (await api.post(headers=ASYNC)).status_code == 429
    api.limiter.advance(0.1)
    assert (await api.post(headers=ASYNC)).status_code == 202


async def test_an_invalid_request_is_refused_for_what_it_is_and_spends_no_token(make_api: MakeApi) -> None:
    api = await make_api(rate_limit_chat_per_minute=1)

    invalid = [
        await api.post(headers=in_chat("a", X_Platform=None)),
        await api.post({"client_id": "test_client_001"}, headers=in_chat("a")),
        await api.post(headers=in_chat("a", Content_Type="text/plain"), content=b"{}"),
    ]
    valid = await api.post(headers=in_chat("a"))
    over = await api.post(headers=in_chat("a", X_Platform=None))

    assert [r.status_code for r in invalid] == [422, 422, 415]
    assert valid.status_code == 202
    assert over.status_code == 422  # validation still comes first once the bucket is empty
    assert len(api.limiter.calls) == 1


async def test_an_unauthorised_request_spends_no_token(make_api: MakeApi) -> None:
    key = "intake-key-0123456789abcdef"
    api = await make_api(rate_limit_chat_per_minute=1, intake_api_key=key)

    unauthorised = await statuses(api, 3, headers=ASYNC)
    authorised = await api.post(headers=headers(Prefer="respond-async", Authorization=f"Bearer {key}"))

    assert unauthorised == [401, 401, 401]
    assert authorised.status_code == 202


async def test_a_blocked_webhook_url_still_spends_its_token(make_api: MakeApi) -> None:
    api = await make_api(rate_limit_chat_per_minute=1)

    blocked = await api.post(headers=in_chat("a", X_Webhook_URL="http://169.254.169.254/latest/meta-data"))
    valid = await api.post(headers=in_chat("a"))

    assert blocked.status_code == 422
    assert valid.status_code == 429  # the limit is checked before the URL guard's lookup


async def test_a_retry_with_the_same_idempotency_key_spends_a_token(make_api: MakeApi) -> None:
    api = await make_api(rate_limit_chat_per_minute=2)
    retry = headers(Prefer="respond-async", Idempotency_Key="order-42-attempt")

    answers = [await api.post(headers=retry) for _ in range(3)]

    assert [a.status_code for a in answers] == [202, 202, 429]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    assert len(api.store.views) == 1


async def test_limits_set_to_zero_are_off(make_api: MakeApi) -> None:
    api = await make_api(rate_limit_client_per_minute=0, rate_limit_chat_per_minute=0)

    assert set(await statuses(api, 40, headers=ASYNC)) == {202}
    assert api.limiter.calls[0] == []


async def test_the_default_limits_apply_per_client_and_per_chat(api: Api) -> None:
    await api.post(headers=ASYNC)

    [limits] = api.limiter.calls
    assert [(limit.scope, limit.bucket.capacity) for limit in limits] == [("client", 120.0), ("chat", 30.0)]
    assert CHECKLIST_BODY["client_id"] in limits[1].key and "test-123" in limits[1].key


async def test_the_429_is_documented_with_its_body_and_header(make_api: MakeApi) -> None:
    api = await make_api(rate_limit_chat_per_minute=1)
    document = await fetch(api)
    await api.post(headers=ASYNC)

    refused = await api.post(headers=ASYNC)

    documented = deref(document, document["paths"]["/api/messages/"]["post"]["responses"]["429"])
    assert conforms(document, documented["content"]["application/json"]["schema"], refused.json())
    assert set(documented["headers"]) == {"Retry-After"}


@pytest.mark.parametrize(
    ("seconds", "header"), [(0.0, 1), (0.2, 1), (1.0, 1), (1.0000001, 1), (1.01, 2), (29.9996, 30), (30.0004, 30)]
)
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(seconds: float, header: int) -> None:
    assert whole_seconds(seconds) == header
