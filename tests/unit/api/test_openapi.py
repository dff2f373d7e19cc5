"""GET /openapi.json: a valid, accurate OpenAPI 3.1 document that the API's answers stay inside."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from neiromatrius.api.openapi import model_components, openapi_document
from neiromatrius.api.schemas import LINE_PATTERN, TEXT_PATTERN
from neiromatrius.core.answer import Answer, response_schema
from neiromatrius.core.models import Classification
from neiromatrius.errors import StoreUnavailable

from .conftest import MakeApi
from .harness import CHECKLIST_BODY, Api, headers, make_settings

OPERATIONS = {
    ("POST", "/api/messages/"),
    ("POST", "/api/messages"),
    ("GET", "/api/messages/{message_id}"),
    ("GET", "/health"),
    ("GET", "/api/health/db"),
    ("GET", "/openapi.json"),
}


def deref(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = document
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


def conforms(document: dict[str, Any], schema: Any, value: Any) -> bool:
    """Enough of JSON Schema for the document's response schemas: $ref, anyOf, type, enum, required."""
    schema = deref(document, schema)
    if "anyOf" in schema:
        return any(conforms(document, option, value) for option in schema["anyOf"])
    if "enum" in schema and value not in schema["enum"]:
        return False
    kinds = {"object": dict, "string": str, "number": (int, float), "boolean": bool, "null": type(None)}
    if "type" in schema and not isinstance(value, kinds[schema["type"]]):
        return False
    if schema.get("type") == "object":
        if not set(schema.get("required", [])) <= set(value):
            return False
        properties = schema.get("properties", {})
        return all(conforms(document, properties[key], item) for key, item in value.items() if key in properties)
    return True


async def fetch(api: Api) -> dict[str, Any]:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


async def test_the_document_is_openapi_31_with_every_operation(api: Api) -> None:
    document = await fetch(api)

    assert document["openapi"].startswith("3.1.")
    assert document["info"]["title"] and document["info"]["version"]
    served = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert served == OPERATIONS
    operation_ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))
    for ref in refs(document):
        assert deref(document, {"$ref": ref}) is not None


async def test_intake_declares_its_headers(api: Api) -> None:
    document = await fetch(api)

    for path in ("/api/messages/", "/api/messages"):
        operation = document["paths"][path]["post"]
        parameters = {p["name"]: p for p in (deref(document, ref) for ref in operation["parameters"])}
        assert {name: p["required"] for name, p in parameters.items()} == {
            "X-Webhook-URL": True,
            "X-Platform": True,
            "X-Chat-ID": True,
            "Idempotency-Key": False,
            "Prefer": False,
        }
        assert all(p["in"] == "header" for p in parameters.values())
        assert set(operation["responses"]) == {"200", "202", "400", "413", "415", "422", "429", "431", "503"}
        body = deref(document, operation["requestBody"]["content"]["application/json"]["schema"])
        assert body["required"] == ["client_id", "content"]
        assert "security" not in operation


async def test_limits_in_the_document_follow_the_settings(make_api: MakeApi) -> None:
    api = await make_api(max_content_chars=321)

    document = await fetch(api)

    assert document["components"]["schemas"]["MessageRequest"]["properties"]["content"]["maxLength"] == 321


async def test_with_an_intake_key_the_document_requires_bearer_auth(make_api: MakeApi) -> None:
    api = await make_api(intake_api_key="intake-key-0123456789abcdef")

    document = await fetch(api)

    assert document["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    for path, method in (("/api/messages/", "post"), ("/api/messages/{message_id}", "get")):
        operation = document["paths"][path][method]
        assert operation["security"] == [{"bearerAuth": []}]
        assert "WWW-Authenticate" in deref(document, operation["responses"]["401"])["headers"]
    assert "security" not in document["paths"]["/health"]["get"]


@pytest.mark.parametrize(
    ("content", "accepted"),
    [("hi", True), ("a\r\n\tb", True), (" ", False), ("\u3000\n", False), ("\ufeff", False), ("a\x00", False),
     ("a\x1f", False), ("x\x85", False), ("\x1c", False)],
)  # fmt: skip
async def test_the_content_pattern_agrees_with_the_api(api: Api, content: str, accepted: bool) -> None:
    response = await api.post({**CHECKLIST_BODY, "content": content}, headers=headers(Prefer="respond-async"))

    assert (response.status_code == 202) is accepted
    assert (re.fullmatch(TEXT_PATTERN, content) is not None) is accepted


@pytest.mark.parametrize(("client_id", "accepted"), [("c 1", True), (" ", True), ("a\tb", False), ("a\x9f", False)])
async def test_the_client_id_pattern_agrees_with_the_api(api: Api, client_id: str, accepted: bool) -> None:
    response = await api.post({**CHECKLIST_BODY, "client_id": client_id}, headers=headers(Prefer="respond-async"))

    assert (response.status_code == 202) is accepted
    assert (re.fullmatch(LINE_PATTERN, client_id) is not None) is accepted


async def test_every_answer_is_documented_with_its_body(api: Api) -> None:
    document = await fetch(api)
    view = api.store.add()
    api.store.answer(view.id)
    requests = [
        ("POST", "/api/messages/", {"headers": headers(Prefer="respond-async"), "json": CHECKLIST_BODY}),
        ("POST", "/api/messages/", {"headers": headers(X_Platform=None), "json": CHECKLIST_BODY}),
        ("POST", "/api/messages/", {"headers": headers(), "content": b"{"}),
        ("POST", "/api/messages/", {"headers": headers(Content_Type="text/plain"), "content": b"{}"}),
        ("POST", "/api/messages/", {"headers": headers(), "content": b"x" * 70_000}),
        ("GET", f"/api/messages/{view.id}", {}),
        ("GET", f"/api/messages/{uuid.uuid4()}", {}),
        ("GET", "/api/messages/nope", {}),
        ("GET", "/health", {}),
        ("GET", "/api/health/db", {}),
    ]
    answers = [await api.client.request(method, url, **kwargs) for method, url, kwargs in requests]
    api.store.ping_error = api.store.intake_error = StoreUnavailable("down")
    answers += [await api.client.get("/health"), await api.client.get("/api/health/db"), await api.post()]

    seen = set()
    for answer in answers:
        operation = operation_for(document, answer.request)
        documented = deref(document, operation["responses"][str(answer.status_code)])
        schema = documented["content"]["application/json"]["schema"]
        assert conforms(document, schema, answer.json()), (answer.request.url, answer.text)
        for name, header in documented.get("headers", {}).items():
            assert name in answer.headers or not deref(document, header).get("required", False)
        seen.add(answer.status_code)
    assert seen == {200, 202, 400, 404, 413, 415, 422, 503}


def operation_for(document: dict[str, Any], request: httpx.Request) -> dict[str, Any]:
    path = request.url.path
    if path.startswith("/api/messages/") and path != "/api/messages/":
        path = "/api/messages/{message_id}"
    operation: dict[str, Any] = document["paths"][path][request.method.lower()]
    return operation


def test_the_telegram_body_is_described_as_the_webhook_reads_it() -> None:
    settings = make_settings(telegram_enabled=True, telegram_bot_token="123456:" + "A" * 35)
    document = openapi_document(settings)

    body = document["paths"]["/api/telegram/webhook"]["post"]["requestBody"]["content"]["application/json"]
    update = deref(document, body["schema"])
    assert update["required"] == ["update_id"]
    assert update["properties"]["update_id"] == {"type": "integer", "minimum": 0}
    assert update["properties"]["message"]["required"] == ["chat"]
    assert all(deref(document, {"$ref": ref}) for ref in refs(document))
    # A string with NUL cannot be stored, so the document does not call it valid.
    assert re.fullmatch(update["properties"]["message"]["propertyNames"]["pattern"], "a\x00b") is None


def test_the_classification_documented_and_the_one_the_model_is_asked_for_come_from_one_model() -> None:
    documented = openapi_document(make_settings())["components"]["schemas"]["Classification"]
    sent = response_schema(("pricing", "other"))

    assert issubclass(Answer, Classification)
    assert documented == model_components(Classification)["Classification"]
    assert list(sent["properties"]) == [*documented["properties"], "reply"]
    for name, field in documented["properties"].items():
        keywords = ("type", "description") if name == "category" else ("type", "enum", "description")
        assert {k: sent["properties"][name].get(k) for k in keywords} == {k: field.get(k) for k in keywords}, name
    assert sent["properties"]["category"]["enum"] == ["pricing", "other"]
