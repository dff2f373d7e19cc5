"""``POST /api/messages/`` and ``GET /api/messages/{id}`` as a caller meets them: the real API process on the
local stack. Every refusal names the field at fault and writes nothing; retries with one Idempotency-Key
land on one row; the answer waits for the listener within a bound, or says where to look later."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from neiromatrius.config import Settings
from neiromatrius_devstack.process import free_port
from tests.conftest import Stack
from tests.e2e.conftest import ServiceProcess, running_listener, service_env, wait_until_healthy
from tests.support.http_receiver import Receiver

INTAKE = "/api/messages/"
WEBHOOK = "http://127.0.0.1:9/hook"  # never called: no listener runs where this is used
QUESTION = "How much does the premium plan cost?"
INTAKE_KEY = "intake-key-" + "q" * 24
CONSOLE = "https://console.example.com"
ROW_FIELDS = ("id", "conversation_id", "state", "classification", "response", "model")

StartApi = Callable[..., str]


@pytest.fixture(scope="module")
def apis(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartApi]:
    """API processes shared by this module: one per distinct environment, started on first use."""
    started: dict[tuple[tuple[str, str], ...], tuple[str, ServiceProcess]] = {}

    def start(**env: str) -> str:
        key = tuple(sorted(env.items()))
        if key not in started:
            port = free_port()
            service = ServiceProcess(
                "api", service_env(stack, API_PORT=str(port), **env), tmp_path_factory.mktemp("api")
            )
            url = f"http://127.0.0.1:{port}"
            started[key] = (url, service)
            wait_until_healthy(url, service)
        return started[key][0]

    yield start
    for _, service in started.values():
        service.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@pytest.fixture
def tag(clean_clients: list[str]) -> str:
    """A client id (and chat id) no other test uses; its rows are deleted afterwards."""
    value = f"intake-{uuid.uuid4().hex[:12]}"
    clean_clients.append(value)
    return value


def intake_headers(tag: str, changes: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """A valid request's headers, with some replaced (``None`` removes one)."""
    headers: dict[str, str | None] = {
        "Content-Type": "application/json",
        "X-Webhook-URL": WEBHOOK,
        "X-Platform": "test",
        "X-Chat-ID": tag,
        "Prefer": "respond-async",
    }
    headers.update(changes or {})
    return {name: value for name, value in headers.items() if value is not None}


MISSING = object()


def intake_body(tag: str, **changes: Any) -> bytes:
    """A valid request's JSON body, with some fields replaced (``MISSING`` removes one)."""
    data: dict[str, Any] = {"client_id": tag, "content": QUESTION} | changes
    return json.dumps({name: value for name, value in data.items() if value is not MISSING}).encode()


async def written_for(db: asyncpg.Connection, tag: str) -> tuple[int, int, int]:
    """(clients, conversations, messages) under a client id starting with ``tag``, or in a chat named ``tag``."""
    row = await db.fetchrow(
        """
        with convs as (select id from public.conversations where starts_with(client_id, $1) or chat_id = $1)
        select (select count(*) from public.clients where starts_with(id, $1)) as clients,
               (select count(*) from convs) as conversations,
               (select count(*) from public.messages
                where starts_with(client_id, $1) or conversation_id in (select id from convs)) as messages
        """,
        tag,
    )
    assert row is not None
    return row["clients"], row["conversations"], row["messages"]


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert isinstance(error.get("code"), str) and isinstance(error.get("message"), str), body
    return error


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    field_name: str  # what the error body's "field" names
    headers: Mapping[str, str | None] = field(default_factory=dict)
    body: Callable[[str], bytes] = intake_body


INVALID = "invalid_request"
REFUSALS = {
    "no X-Webhook-URL": Refusal(422, INVALID, "X-Webhook-URL", {"X-Webhook-URL": None}),
    "no X-Platform": Refusal(422, INVALID, "X-Platform", {"X-Platform": None}),
    "no X-Chat-ID": Refusal(422, INVALID, "X-Chat-ID", {"X-Chat-ID": None}),
    "X-Platform with a space": Refusal(422, INVALID, "X-Platform", {"X-Platform": "tele gram"}),
    "X-Platform too long": Refusal(422, INVALID, "X-Platform", {"X-Platform": "p" * 33}),
    "X-Webhook-URL ftp": Refusal(422, INVALID, "X-Webhook-URL", {"X-Webhook-URL": "ftp://127.0.0.1/hook"}),
    "X-Webhook-URL javascript": Refusal(422, INVALID, "X-Webhook-URL", {"X-Webhook-URL": "javascript:alert(1)"}),
    "X-Webhook-URL with credentials": Refusal(
        422, INVALID, "X-Webhook-URL", {"X-Webhook-URL": "http://user:pw@127.0.0.1:9/hook"}
    ),
    "Idempotency-Key too short": Refusal(422, INVALID, "Idempotency-Key", {"Idempotency-Key": "short"}),
    "Idempotency-Key too long": Refusal(422, INVALID, "Idempotency-Key", {"Idempotency-Key": "k" * 256}),
    "text/plain": Refusal(415, "unsupported_media_type", "Content-Type", {"Content-Type": "text/plain"}),
    "malformed JSON": Refusal(400, "malformed_body", "body", body=lambda tag: b'{"client_id": "' + tag.encode()),
    "JSON array": Refusal(422, INVALID, "body", body=lambda tag: json.dumps([tag, QUESTION]).encode()),
    "no client_id": Refusal(422, INVALID, "client_id", body=lambda tag: intake_body(tag, client_id=MISSING)),
    "empty client_id": Refusal(422, INVALID, "client_id", body=lambda tag: intake_body(tag, client_id="")),
    "client_id of 129": Refusal(
        422, INVALID, "client_id", body=lambda tag: intake_body(tag, client_id=tag.ljust(129, "x"))
    ),
    "client_id a number": Refusal(422, INVALID, "client_id", body=lambda tag: intake_body(tag, client_id=42)),
    "no content": Refusal(422, INVALID, "content", body=lambda tag: intake_body(tag, content=MISSING)),
    "empty content": Refusal(422, INVALID, "content", body=lambda tag: intake_body(tag, content="")),
    "whitespace content": Refusal(422, INVALID, "content", body=lambda tag: intake_body(tag, content=" \t\n\u00a0 ")),
    "content of 4001": Refusal(422, INVALID, "content", body=lambda tag: intake_body(tag, content="a" * 4001)),
    "content with NUL": Refusal(422, INVALID, "content", body=lambda tag: intake_body(tag, content="a\u0000b")),
    "body over 64 KB": Refusal(
        413, "payload_too_large", "body", body=lambda tag: intake_body(tag, content="a" * 70_000)
    ),
}


async def test_the_valid_request_the_refusals_start_from_is_accepted(
    apis: StartApi, http: httpx.AsyncClient, db: asyncpg.Connection, tag: str
) -> None:
    response = await http.post(apis() + INTAKE, headers=intake_headers(tag), content=intake_body(tag))

    assert response.status_code == 202, response.text
    assert await written_for(db, tag) == (1, 1, 1)


@pytest.mark.parametrize("refusal", REFUSALS.values(), ids=REFUSALS.keys())
async def test_a_bad_request_is_refused_naming_the_field_and_nothing_is_written(
    apis: StartApi, http: httpx.AsyncClient, db: asyncpg.Connection, tag: str, refusal: Refusal
) -> None:
    messages_before = await db.fetchval("select count(*) from public.messages")

    response = await http.post(apis() + INTAKE, headers=intake_headers(tag, refusal.headers), content=refusal.body(tag))

    assert response.status_code == refusal.status, response.text
    error = error_of(response)
    assert (error["code"], error["field"]) == (refusal.code, refusal.field_name)
    assert await written_for(db, tag) == (0, 0, 0)
    assert await db.fetchval("select count(*) from public.messages") == messages_before


async def test_a_chunked_body_over_64_kb_is_refused_with_413_and_nothing_is_written(
    apis: StartApi, http: httpx.AsyncClient, db: asyncpg.Connection, tag: str
) -> None:
    body = intake_body(tag, content="a" * 70_000)

    async def chunks() -> AsyncIterator[bytes]:  # no length up front: httpx sends it chunked
        for start in range(0, len(body), 16_384):
            yield body[start : start + 16_384]

    response = await http.post(apis() + INTAKE, headers=intake_headers(tag), content=chunks())

    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 413, response.text
    error = error_of(response)
    assert (error["code"], error["field"]) == ("payload_too_large", "body")
    assert await written_for(db, tag) == (0, 0, 0)


async def test_content_of_exactly_4000_characters_is_accepted(
    apis: StartApi, http: httpx.AsyncClient, db: asyncpg.Connection, tag: str
) -> None:
    content = "я" * 4000  # 8000 bytes: the limit counts characters

    response = await http.post(apis() + INTAKE, headers=intake_headers(tag), content=intake_body(tag, content=content))

    assert response.status_code == 202, response.text
    assert await db.fetchval("select content from public.messages where client_id = $1", tag) == content


AUTHORIZATIONS = {
    "no Authorization": None,
    "a wrong key": f"Bearer {INTAKE_KEY}-wrong",
    "the key without Bearer": INTAKE_KEY,
    "the key as Basic": f"Basic {INTAKE_KEY}",
}


@pytest.mark.parametrize("authorization", AUTHORIZATIONS.values(), ids=AUTHORIZATIONS.keys())
async def test_with_an_intake_key_a_request_without_it_is_refused_with_401_and_nothing_is_written(
    apis: StartApi, http: httpx.AsyncClient, db: asyncpg.Connection, tag: str, authorization: str | None
) -> None:
    response = await http.post(
        apis(INTAKE_API_KEY=INTAKE_KEY) + INTAKE,
        headers=intake_headers(tag, {"Authorization": authorization}),
        content=intake_body(tag),
    )

    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    error = error_of(response)
    assert (error["code"], error["field"]) == ("unauthorized", "Authorization")
    assert await written_for(db, tag) == (0, 0, 0)


async def test_with_an_intake_key_the_right_bearer_is_accepted_and_reading_back_needs_it_too(
    apis: StartApi, http: httpx.AsyncClient, db: asyncpg.Connection, tag: str
) -> None:
    url = apis(INTAKE_API_KEY=INTAKE_KEY)
    bearer = {"Authorization": f"Bearer {INTAKE_KEY}"}

    accepted = await http.post(url + INTAKE, headers=intake_headers(tag, bearer), content=intake_body(tag))
    location = accepted.headers.get("Location", "")
    anonymous = await http.get(url + location)
    authorised = await http.get(url + location, headers=bearer)

    assert accepted.status_code == 202, accepted.text
    assert await written_for(db, tag) == (1, 1, 1)
    assert anonymous.status_code == 401, anonymous.text
    assert error_of(anonymous)["field"] == "Authorization"
    assert authorised.status_code == 200, authorised.text
    assert authorised.json()["id"] == accepted.json()["id"]


async def test_a_retry_with_the_same_idempotency_key_returns_the_first_message(
    apis: StartApi, http: httpx.AsyncClient, db: asyncpg.Connection, tag: str
) -> None:
    headers = intake_headers(tag, {"Idempotency-Key": str(uuid.uuid4())})

    first = await http.post(apis() + INTAKE, headers=headers, content=intake_body(tag))
    retry = await http.post(apis() + INTAKE, headers=headers, content=intake_body(tag))

    assert (first.status_code, retry.status_code) == (202, 202), (first.text, retry.text)
    assert retry.json() == first.json()
    assert retry.headers["Location"] == first.headers["Location"] == f"/api/messages/{first.json()['id']}"
    assert await written_for(db, tag) == (1, 1, 1)


async def test_the_same_idempotency_key_with_other_content_is_refused_and_the_first_message_stands(
    apis: StartApi, http: httpx.AsyncClient, db: asyncpg.Connection, tag: str
) -> None:
    headers = intake_headers(tag, {"Idempotency-Key": str(uuid.uuid4())})

    first = await http.post(apis() + INTAKE, headers=headers, content=intake_body(tag))
    reused = await http.post(apis() + INTAKE, headers=headers, content=intake_body(tag, content="Something else"))

    assert first.status_code == 202, first.text
    assert reused.status_code == 422, reused.text
    error = error_of(reused)
    assert (error["code"], error["field"]) == ("idempotency_key_reused", "Idempotency-Key")
    rows = await db.fetch("select id, content from public.messages where client_id = $1", tag)
    assert [(str(row["id"]), row["content"]) for row in rows] == [(first.json()["id"], QUESTION)]


async def test_an_idempotency_key_belongs_to_its_client(
    apis: StartApi, http: httpx.AsyncClient, db: asyncpg.Connection, tag: str, clean_clients: list[str]
) -> None:
    other = f"{tag}-other"
    clean_clients.append(other)
    key = str(uuid.uuid4())

    mine = await http.post(
        apis() + INTAKE, headers=intake_headers(tag, {"Idempotency-Key": key}), content=intake_body(tag)
    )
    theirs = await http.post(
        apis() + INTAKE, headers=intake_headers(tag, {"Idempotency-Key": key}), content=intake_body(other)
    )

    assert (mine.status_code, theirs.status_code) == (202, 202), (mine.text, theirs.text)
    assert mine.json()["id"] != theirs.json()["id"]
    assert await db.fetchval("select count(*) from public.messages where client_id = $1", tag) == 1
    assert await db.fetchval("select count(*) from public.messages where client_id = $1", other) == 1


async def test_ten_concurrent_requests_with_one_idempotency_key_make_one_message(
    apis: StartApi, http: httpx.AsyncClient, db: asyncpg.Connection, tag: str
) -> None:
    url, headers = apis() + INTAKE, intake_headers(tag, {"Idempotency-Key": str(uuid.uuid4())})

    responses = await asyncio.gather(*(http.post(url, headers=headers, content=intake_body(tag)) for _ in range(10)))

    assert [r.status_code for r in responses] == [202] * 10, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await written_for(db, tag) == (1, 1, 1)


async def test_respond_async_answers_202_with_where_to_read_the_message(
    apis: StartApi, http: httpx.AsyncClient, db: asyncpg.Connection, tag: str
) -> None:
    url = apis()

    accepted = await http.post(url + INTAKE, headers=intake_headers(tag), content=intake_body(tag))
    body = accepted.json()
    read = await http.get(url + accepted.headers["Location"])

    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["Preference-Applied"] == "respond-async"
    assert accepted.headers["Location"] == f"/api/messages/{body['id']}"
    assert body["state"] == "pending"
    row = await db.fetchrow("select * from public.messages where id = $1", uuid.UUID(body["id"]))
    assert row is not None
    assert (str(row["conversation_id"]), row["client_id"], row["content"], row["state"]) == (
        body["conversation_id"], tag, QUESTION, "pending",
    )  # fmt: skip
    assert read.status_code == 200, read.text
    assert read.json() == {
        "id": body["id"],
        "conversation_id": body["conversation_id"],
        "state": "pending",
        "classification": None,
        "response": None,
        "model": None,
    }


@pytest.mark.parametrize("message_id", ["not-a-uuid", str(uuid.uuid4())], ids=["not a UUID", "an unknown UUID"])
async def test_reading_a_message_that_does_not_exist_is_404(
    apis: StartApi, http: httpx.AsyncClient, message_id: str
) -> None:
    response = await http.get(f"{apis()}/api/messages/{message_id}")

    assert response.status_code == 404, response.text
    assert error_of(response)["code"] == "not_found"


async def test_without_a_listener_a_waiting_request_answers_202_pending_when_the_wait_ends(
    apis: StartApi, http: httpx.AsyncClient, db: asyncpg.Connection, tag: str
) -> None:
    response = await http.post(
        apis(REPLY_WAIT_SECONDS="1") + INTAKE, headers=intake_headers(tag, {"Prefer": None}), content=intake_body(tag)
    )

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["state"] == "pending"
    assert response.headers["Location"] == f"/api/messages/{body['id']}"
    assert "Preference-Applied" not in response.headers  # the client did not ask; the wait ran out
    assert await db.fetchval("select state from public.messages where id = $1", uuid.UUID(body["id"])) == "pending"


async def test_with_a_listener_a_waiting_request_is_answered_by_the_offline_model(
    apis: StartApi,
    http: httpx.AsyncClient,
    db: asyncpg.Connection,
    tag: str,
    e2e_settings: Settings,
    receiver: Callable[..., Any],
) -> None:
    url = apis()  # started before the listener, so nothing about it depends on the listener
    hook: Receiver = await receiver()
    offline: Settings = e2e_settings.model_copy(update={"openai_api_key": None})
    headers = intake_headers(tag, {"Prefer": None, "X-Webhook-URL": hook.url()})

    async with running_listener(offline):
        response = await http.post(url + INTAKE, headers=headers, content=intake_body(tag))

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(ROW_FIELDS) <= set(body)
    assert body["state"] == "answered"
    assert body["model"].startswith("offline-rules")
    assert (body["classification"]["category"], body["classification"]["language"]) == ("pricing", "en")
    assert isinstance(body["response"], str) and body["response"].strip()
    stored = await db.fetchrow(
        "select m.state, r.content, r.model, k.category, k.model as k_model from public.messages m"
        " join public.replies r on r.message_id = m.id join public.classifications k on k.message_id = m.id"
        " where m.id = $1",
        uuid.UUID(body["id"]),
    )
    assert stored is not None
    assert tuple(stored) == ("answered", body["response"], body["model"], "pricing", body["model"])


INTAKE_REQUEST_HEADERS = ("content-type", "x-webhook-url", "x-platform", "x-chat-id", "idempotency-key", "prefer")


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": ", ".join(INTAKE_REQUEST_HEADERS),
    }


@pytest.fixture
def cors_api(apis: StartApi) -> str:
    return apis(ALLOWED_ORIGINS=json.dumps([CONSOLE]))


async def test_cors_preflight_from_an_allowed_origin_is_allowed(cors_api: str, http: httpx.AsyncClient) -> None:
    response = await http.options(cors_api + INTAKE, headers=preflight(CONSOLE))

    assert response.status_code == 200, response.text
    assert response.headers["Access-Control-Allow-Origin"] == CONSOLE
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = {name.strip().lower() for name in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert set(INTAKE_REQUEST_HEADERS) <= allowed


async def test_cors_preflight_from_another_origin_is_not_allowed(cors_api: str, http: httpx.AsyncClient) -> None:
    response = await http.options(cors_api + INTAKE, headers=preflight("https://evil.example"))

    assert response.status_code >= 400
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_a_browser_at_an_allowed_origin_may_read_the_location_of_an_accepted_message(
    cors_api: str, http: httpx.AsyncClient, db: asyncpg.Connection, tag: str
) -> None:
    response = await http.post(
        cors_api + INTAKE, headers=intake_headers(tag, {"Origin": CONSOLE}), content=intake_body(tag)
    )

    assert response.status_code == 202, response.text
    assert response.headers["Access-Control-Allow-Origin"] == CONSOLE
    exposed = {name.strip().lower() for name in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"location", "preference-applied"} <= exposed
    assert await written_for(db, tag) == (1, 1, 1)
