"""OpenAIResponder against a mocked OpenAI (respx on the shared httpx client) and a socket that never answers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx

from neiromatrius.adapters.openai_responder import OpenAIResponder
from neiromatrius.config import Settings
from neiromatrius.core.categories import CategoryCatalog
from neiromatrius.core.models import BurstMessage, Category, ClaimedMessage, ContextMessage
from neiromatrius.core.prompt import PROMPT_VERSION
from neiromatrius.errors import ModelQuotaExceeded, ModelUnavailable, ResponderError, UnusableAnswer

BASE_URL = "https://openai.test/v1"
CATEGORIES = ("pricing", "greeting", "other")
CLIENT_ID = "client-4242"
MAX_RETRIES = 2


class RecordingSleep:
    """Stands in for asyncio.sleep: records the waits and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "supabase_url": "http://localhost:54321",
        "supabase_service_role_key": "service-role",
        "secret_key": "s" * 32,
        "openai_api_key": "sk-test",
        "openai_base_url": BASE_URL,
        "openai_max_retries": MAX_RETRIES,
        "openai_max_completion_tokens": 300,
        "categories": CATEGORIES,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def claimed(content: str = "How much is the Pro plan?") -> ClaimedMessage:
    return ClaimedMessage(
        id="m1",
        conversation_id="c1",
        client_id=CLIENT_ID,
        platform="web",
        chat_id="chat-1",
        content=content,
        attempts=1,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def answer(**overrides: Any) -> str:
    data: dict[str, Any] = {
        "category": "pricing",
        "intent": "ask_price",
        "sentiment": "neutral",
        "urgency": "normal",
        "language": "en",
        "confidence": 0.82,
        "needs_human": False,
        "reply": "The Pro plan costs 20 EUR a month.",
    }
    return json.dumps(data | overrides)


def completion(
    content: str | None = None, *, finish_reason: str = "stop", refusal: str | None = None
) -> httpx.Response:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "logprobs": None,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160},
    }
    return httpx.Response(200, json=body)


def error(status: int, code: str = "server_error", headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"message": "nope", "type": code, "param": None, "code": code}}
    return httpx.Response(status, json=body, headers=headers)


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def openai_api() -> Iterator[respx.Route]:
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router.post("/chat/completions")


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def responder(http_client: httpx.AsyncClient, sleep: RecordingSleep) -> OpenAIResponder:
    return OpenAIResponder.from_settings(settings(), http_client, sleep=sleep)


async def test_a_valid_answer_becomes_a_triage(responder: OpenAIResponder, openai_api: respx.Route) -> None:
    openai_api.return_value = completion(answer())

    triage = await responder.respond(claimed(), [])

    assert triage.classification.category == "pricing"
    assert triage.classification.confidence == 0.82
    assert triage.reply == "The Pro plan costs 20 EUR a month."
    assert triage.usage.model == "gpt-4o-mini-2024-07-18"
    assert triage.usage.prompt_version == PROMPT_VERSION
    assert (triage.usage.prompt_tokens, triage.usage.completion_tokens) == (120, 40)
    assert triage.usage.latency_ms >= 0


async def test_an_answer_the_sdk_types_do_not_foresee_is_read_as_the_sdk_would(
    responder: OpenAIResponder, openai_api: respx.Route
) -> None:
    # A finish reason newer than the SDK's Literal, and a usage block grown fields: the response is still read.
    body = json.loads(completion(answer()).content)
    body["choices"][0]["finish_reason"] = "a_reason_from_the_future"
    body["usage"]["prompt_tokens_details"] = {"cached_tokens": "many"}
    openai_api.return_value = httpx.Response(200, json=body)

    triage = await responder.respond(claimed(), [])

    assert triage.classification.category == "pricing"
    assert triage.reply == "The Pro plan costs 20 EUR a month."
    assert triage.usage.model == "gpt-4o-mini-2024-07-18"
    assert (triage.usage.prompt_tokens, triage.usage.completion_tokens) == (120, 40)


async def test_the_request_is_strict_bounded_and_pseudonymous(
    responder: OpenAIResponder, openai_api: respx.Route
) -> None:
    openai_api.return_value = completion(answer())
    context = [
        ContextMessage(role="user", content="Hello"),
        ContextMessage(role="assistant", content="Hello! How can we help?"),
    ]

    await responder.respond(claimed("How much is the Pro plan?"), context)

    request = openai_api.calls.last.request
    body = json.loads(request.content)
    assert request.headers["authorization"] == "Bearer sk-test"
    assert body["model"] == "gpt-4o-mini"
    assert body["max_completion_tokens"] == 300
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["name"] == "triage"
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False
    assert fmt["json_schema"]["schema"]["properties"]["category"]["enum"] == list(CATEGORIES)
    key = settings().derived_secret("openai-safety-identifier")
    assert body["safety_identifier"] == hmac.new(key, CLIENT_ID.encode(), hashlib.sha256).hexdigest()
    assert CLIENT_ID.encode() not in request.content
    messages = body["messages"]
    assert messages[0]["role"] == "system"
    assert messages[1:] == [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hello! How can we help?"},
        {"role": "user", "content": "How much is the Pro plan?"},
    ]


async def test_context_over_the_budget_is_left_out(
    http_client: httpx.AsyncClient, sleep: RecordingSleep, openai_api: respx.Route
) -> None:
    responder = OpenAIResponder.from_settings(settings(context_max_tokens=100), http_client, sleep=sleep)
    openai_api.return_value = completion(answer())
    context = [ContextMessage(role="user", content="old " * 200), ContextMessage(role="assistant", content="recent")]

    await responder.respond(claimed(), context)

    messages = json.loads(openai_api.calls.last.request.content)["messages"]
    assert [m["content"] for m in messages[1:]] == ["recent", "How much is the Pro plan?"]


async def test_a_429_is_retried_after_retry_after(
    responder: OpenAIResponder, openai_api: respx.Route, sleep: RecordingSleep
) -> None:
    openai_api.side_effect = [error(429, "rate_limit_exceeded", {"retry-after": "0.01"}), completion(answer())]

    triage = await responder.respond(claimed(), [])

    assert triage.classification.category == "pricing"
    assert openai_api.call_count == 2
    assert sleep.waits == [0.01]


async def test_retry_after_ms_wins_over_retry_after(
    responder: OpenAIResponder, openai_api: respx.Route, sleep: RecordingSleep
) -> None:
    headers = {"retry-after-ms": "250", "retry-after": "3"}
    openai_api.side_effect = [error(503, headers=headers), completion(answer())]

    await responder.respond(claimed(), [])

    assert sleep.waits == [0.25]


async def test_retry_after_as_an_http_date(
    responder: OpenAIResponder, openai_api: respx.Route, sleep: RecordingSleep
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    openai_api.side_effect = [error(429, "rate_limit_exceeded", {"retry-after": when}), completion(answer())]

    await responder.respond(claimed(), [])

    assert len(sleep.waits) == 1
    assert 25 < sleep.waits[0] <= 30


async def test_an_unreasonable_retry_after_falls_back_to_backoff(
    responder: OpenAIResponder, openai_api: respx.Route, sleep: RecordingSleep
) -> None:
    openai_api.side_effect = [error(429, "rate_limit_exceeded", {"retry-after": "600"}), completion(answer())]

    await responder.respond(claimed(), [])

    assert len(sleep.waits) == 1
    assert 0.375 <= sleep.waits[0] <= 0.5


async def test_insufficient_quota_is_never_retried(
    responder: OpenAIResponder, openai_api: respx.Route, sleep: RecordingSleep
) -> None:
    openai_api.return_value = error(429, "insufficient_quota", {"retry-after": "1"})

    with pytest.raises(ModelQuotaExceeded) as caught:
        await responder.respond(claimed(), [])

    assert caught.value.retryable is False
    assert openai_api.call_count == 1
    assert sleep.waits == []


async def test_persistent_5xx_gives_up_after_the_configured_retries(
    responder: OpenAIResponder, openai_api: respx.Route, sleep: RecordingSleep
) -> None:
    openai_api.return_value = error(500)

    with pytest.raises(ModelUnavailable) as caught:
        await responder.respond(claimed(), [])

    assert caught.value.retryable is True
    assert "500" in caught.value.message
    assert openai_api.call_count == 1 + MAX_RETRIES
    assert len(sleep.waits) == MAX_RETRIES
    assert 0.375 <= sleep.waits[0] <= 0.5
    assert 0.75 <= sleep.waits[1] <= 1.0


@pytest.mark.parametrize("failure", [httpx.ReadTimeout("read timed out"), httpx.ConnectError("refused")])
async def test_timeouts_and_connection_errors_are_retried_then_reported(
    responder: OpenAIResponder, openai_api: respx.Route, sleep: RecordingSleep, failure: Exception
) -> None:
    openai_api.side_effect = failure

    with pytest.raises(ModelUnavailable):
        await responder.respond(claimed(), [])

    assert openai_api.call_count == 1 + MAX_RETRIES
    assert len(sleep.waits) == MAX_RETRIES


async def test_a_timeout_then_an_answer_succeeds(
    responder: OpenAIResponder, openai_api: respx.Route, sleep: RecordingSleep
) -> None:
    openai_api.side_effect = [httpx.ReadTimeout("read timed out"), completion(answer())]

    triage = await responder.respond(claimed(), [])

    assert triage.reply
    assert openai_api.call_count == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_not_retried(
    responder: OpenAIResponder, openai_api: respx.Route, sleep: RecordingSleep, status: int
) -> None:
    openai_api.return_value = error(status, "invalid_request_error")

    with pytest.raises(ResponderError) as caught:
        await responder.respond(claimed(), [])

    assert not isinstance(caught.value, ModelUnavailable | ModelQuotaExceeded)
    assert str(status) in caught.value.message
    assert openai_api.call_count == 1
    assert sleep.waits == []


async def test_a_hanging_server_is_cut_off_by_our_timeout(
    http_client: httpx.AsyncClient, sleep: RecordingSleep
) -> None:
    """No mock: a real socket that accepts and never answers; our explicit timeout must end each attempt."""
    connections = 0
    release = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await release.wait()
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = settings(openai_base_url=f"http://127.0.0.1:{port}/v1", openai_timeout_seconds=0.2, openai_max_retries=1)
    responder = OpenAIResponder.from_settings(config, http_client, sleep=sleep)
    try:
        with pytest.raises(ModelUnavailable) as caught:
            await responder.respond(claimed(), [])
    finally:
        release.set()
        server.close()
        await server.wait_closed()

    assert "timeout" in caught.value.message
    assert connections == 2


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (completion(answer(), finish_reason="length"), "truncated"),
        (completion(None, refusal="I can't help with that."), "refused"),
        (completion(None), "no_content"),
        (completion("not json"), "invalid_json"),
        (completion(answer(category="refund")), "schema: category 'refund' not allowed"),
        (completion(answer(reply="   ")), "empty_reply"),
    ],
)
async def test_unusable_answers_are_refused_with_their_usage(
    responder: OpenAIResponder, openai_api: respx.Route, sleep: RecordingSleep, response: httpx.Response, reason: str
) -> None:
    openai_api.return_value = response

    with pytest.raises(UnusableAnswer) as caught:
        await responder.respond(claimed(), [])

    assert caught.value.message == reason
    assert getattr(caught.value, "usage").completion_tokens == 40  # noqa: B009
    assert openai_api.call_count == 1
    assert sleep.waits == []


async def test_a_burst_is_sent_as_the_customers_messages_in_order(
    responder: OpenAIResponder, openai_api: respx.Route
) -> None:
    openai_api.return_value = completion(answer())
    lines = ["hi", "how much is", "the Pro plan?"]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    burst = tuple(BurstMessage(id=f"m{i}", content=line, created_at=at) for i, line in enumerate(lines))
    message = claimed(lines[0]).model_copy(update={"burst": burst})

    await responder.respond(message, [ContextMessage(role="assistant", content="Welcome back!")])

    messages = json.loads(openai_api.calls.last.request.content)["messages"]
    assert messages[1:] == [
        {"role": "assistant", "content": "Welcome back!"},
        *({"role": "user", "content": line} for line in lines),
    ]


async def test_a_changed_catalog_changes_the_next_requests_schema_and_prompt_and_what_is_accepted(
    http_client: httpx.AsyncClient, sleep: RecordingSleep, openai_api: respx.Route
) -> None:
    catalog = CategoryCatalog(CATEGORIES)
    responder = OpenAIResponder.from_settings(settings(), http_client, sleep=sleep, catalog=catalog)
    openai_api.return_value = completion(answer(category="warranty"))
    with pytest.raises(UnusableAnswer, match="category 'warranty' not allowed"):
        await responder.respond(claimed(), [])

    catalog.replace([*catalog.current.categories, Category(name="warranty", description="Repairs under warranty")])
    triage = await responder.respond(claimed(), [])

    assert triage.classification.category == "warranty"
    first, second = (json.loads(call.request.content) for call in openai_api.calls)
    enum = second["response_format"]["json_schema"]["schema"]["properties"]["category"]["enum"]
    assert enum == [*CATEGORIES, "warranty"]
    assert "warranty" not in first["messages"][0]["content"]
    assert "- warranty: Repairs under warranty" in second["messages"][0]["content"]
