"""Every malformed request is refused with its status and the field at fault, before anything is stored."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import MakeApi
from .harness import BLOCKED_URL, CHECKLIST_BODY, CHECKLIST_HEADERS, Api, headers

BAD_HEADERS = [
    pytest.param(headers(X_Webhook_URL=None), "X-Webhook-URL", id="webhook-missing"),
    pytest.param(headers(X_Webhook_URL="https://x.example/" + "a" * 2048), "X-Webhook-URL", id="webhook-long"),
    pytest.param(headers(X_Webhook_URL="ftp://test-webhook.com/test"), "X-Webhook-URL", id="webhook-ftp"),
    pytest.param(headers(X_Webhook_URL="test-webhook.com/test"), "X-Webhook-URL", id="webhook-no-scheme"),
    pytest.param(headers(X_Platform=None), "X-Platform", id="platform-missing"),
    pytest.param(headers(X_Platform="tele gram"), "X-Platform", id="platform-space"),
    pytest.param(headers(X_Platform="tg.bot"), "X-Platform", id="platform-dot"),
    pytest.param(headers(X_Platform="p" * 33), "X-Platform", id="platform-long"),
    pytest.param(headers(X_Chat_ID=None), "X-Chat-ID", id="chat-missing"),
    pytest.param(headers(X_Chat_ID="c" * 129), "X-Chat-ID", id="chat-long"),
    pytest.param(headers(X_Chat_ID="chat\x7fid"), "X-Chat-ID", id="chat-control"),
    pytest.param(headers(X_Chat_ID="чат".encode()), "X-Chat-ID", id="chat-not-ascii"),
    pytest.param(headers(Idempotency_Key="short"), "Idempotency-Key", id="key-short"),
    pytest.param(headers(Idempotency_Key="k" * 256), "Idempotency-Key", id="key-long"),
    pytest.param(headers(Idempotency_Key="ключ-идемпотентности".encode()), "Idempotency-Key", id="key-not-ascii"),
]

BAD_BODIES = [
    pytest.param([CHECKLIST_BODY], "body", id="array"),
    pytest.param("just a string", "body", id="string"),
    pytest.param({"content": "hi"}, "client_id", id="client-missing"),
    pytest.param({**CHECKLIST_BODY, "client_id": 42}, "client_id", id="client-number"),
    pytest.param({**CHECKLIST_BODY, "client_id": ""}, "client_id", id="client-empty"),
    pytest.param({**CHECKLIST_BODY, "client_id": "c" * 129}, "client_id", id="client-long"),
    pytest.param({**CHECKLIST_BODY, "client_id": "a\nb"}, "client_id", id="client-newline"),
    pytest.param({"client_id": "c1"}, "content", id="content-missing"),
    pytest.param({**CHECKLIST_BODY, "content": None}, "content", id="content-null"),
    pytest.param({**CHECKLIST_BODY, "content": ["hi"]}, "content", id="content-list"),
    pytest.param({**CHECKLIST_BODY, "content": ""}, "content", id="content-empty"),
    pytest.param({**CHECKLIST_BODY, "content": " \n\t\u3000"}, "content", id="content-blank"),
    pytest.param({**CHECKLIST_BODY, "content": "\ufeff"}, "content", id="content-bom"),
    pytest.param({**CHECKLIST_BODY, "content": "a\x00b"}, "content", id="content-nul"),
    pytest.param({**CHECKLIST_BODY, "content": "ring\x07"}, "content", id="content-bell"),
    pytest.param({**CHECKLIST_BODY, "content": "x\x85"}, "content", id="content-c1-control"),
    pytest.param({**CHECKLIST_BODY, "message_id": 5521}, "message_id", id="message-id-number"),
    pytest.param({**CHECKLIST_BODY, "message_id": "m" * 129}, "message_id", id="message-id-long"),
    pytest.param({**CHECKLIST_BODY, "message_id": ""}, "message_id", id="message-id-empty"),
]

BAD_BYTES = [
    pytest.param(b'{"client_id": "c1", "content": ', 400, "body", id="truncated"),
    pytest.param(b"", 400, "body", id="empty"),
    pytest.param('{"client_id":"c1","content":"Привет"}'.encode("cp1251"), 400, "body", id="not-utf8"),
    pytest.param('{"client_id":"c1","content":"hi"}'.encode("utf-16"), 400, "body", id="utf16"),
    pytest.param(b"[" * 20000 + b"]" * 20000, 400, "body", id="too-deep"),
    pytest.param(b'{"client_id":"c1","content":"hi","n":NaN}', 400, "body", id="nan"),
    pytest.param(b'{"client_id":"c1","content":"hi","n":-Infinity}', 400, "body", id="infinity"),
    pytest.param(b'{"client_id":"c1","content":"\\ud800"}', 422, "content", id="lone-surrogate"),
    pytest.param(b'{"client_id":"\\udfff","content":"hi"}', 422, "client_id", id="client-surrogate"),
    pytest.param(b'{"client_id":"c1","content":"hi","client_id":"c2"}', 400, "body", id="repeated-key"),
    pytest.param(b'{"client_id":"c1","content":"hi","x":{"a":1,"a":2}}', 400, "body", id="repeated-nested-key"),
]


def assert_refused(api: Api, response: Any, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert error["code"] and error["message"]
    assert api.store.intakes == []


@pytest.mark.parametrize(("request_headers", "field"), BAD_HEADERS)
async def test_bad_headers_are_422_naming_the_header(api: Api, request_headers: dict[str, str], field: str) -> None:
    response = await api.post(headers=request_headers)

    assert_refused(api, response, 422, field)
    assert field in response.json()["error"]["message"]
    assert api.guard.checked == []


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
async def test_bad_fields_are_422_naming_the_field(api: Api, body: Any, field: str) -> None:
    response = await api.post(body)

    assert_refused(api, response, 422, field)
    assert api.guard.checked == []


@pytest.mark.parametrize("name", ["X-Webhook-URL", "X-Platform", "X-Chat-ID", "Idempotency-Key"])
async def test_a_header_sent_twice_is_422_naming_it(api: Api, name: str) -> None:
    first = {"Idempotency-Key": "key-00000001"}.get(name) or CHECKLIST_HEADERS[name]
    sent = [(key, value) for key, value in CHECKLIST_HEADERS.items() if key != name] + [(name, first), (name, first)]
    response = await api.post(headers=sent)

    assert_refused(api, response, 422, name)
    assert "once" in response.json()["error"]["message"]


@pytest.mark.parametrize(("content", "status", "field"), BAD_BYTES)
async def test_bodies_that_are_not_utf8_json_objects(api: Api, content: bytes, status: int, field: str) -> None:
    response = await api.post(content=content)

    assert_refused(api, response, status, field)


async def test_content_over_the_limit_is_422_and_says_the_limit(make_api: MakeApi) -> None:
    api = await make_api(max_content_chars=50)

    response = await api.post({**CHECKLIST_BODY, "content": "я" * 51})

    assert_refused(api, response, 422, "content")
    assert "50" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", ""]
)
async def test_a_body_that_is_not_json_is_415(api: Api, content_type: str) -> None:
    response = await api.post(headers=headers(Content_Type=content_type))

    assert_refused(api, response, 415, "Content-Type")


@pytest.mark.parametrize("content_type", [None, "application/json; charset=UTF-8", "application/vnd.chat+json"])
async def test_json_media_types_are_accepted(api: Api, content_type: str | None) -> None:
    request_headers = headers(Content_Type=content_type, Prefer="respond-async")
    response = await api.post(content=b'{"client_id":"c1","content":"hi"}', headers=request_headers)

    assert response.status_code == 202
    assert len(api.store.intakes) == 1


async def test_headers_are_checked_before_the_body(api: Api) -> None:
    response = await api.post(content=b"not json", headers=headers(X_Chat_ID=None))

    assert_refused(api, response, 422, "X-Chat-ID")


async def test_a_blocked_webhook_url_is_refused_before_the_store(api: Api) -> None:
    response = await api.post(headers=headers(X_Webhook_URL=BLOCKED_URL))

    assert_refused(api, response, 422, "X-Webhook-URL")
    assert api.guard.checked == [BLOCKED_URL]
