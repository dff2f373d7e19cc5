"""The OpenAPI 3.1 document, built from the settings so its limits are the ones in force.

The answers' schemas are generated from the pydantic models the API renders them with (and the
``Classification`` from the same model the model's answer is checked against); the request, its headers
and the error body are parsed by hand, so their schemas are written here beside the patterns they share.
Every status an endpoint can answer is listed with its body; schemathesis holds the API to it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .. import __version__
from ..config import Settings
from ..core.models import MAX_WEBHOOK_URL_CHARS, WEBHOOK_URL_HEADER
from ..web.auth import intake_key
from .schemas import (
    CHAT_ID_PATTERN,
    IDEMPOTENCY_KEY_PATTERN,
    LINE_PATTERN,
    MAX_ID_CHARS,
    PLATFORM_PATTERN,
    TEXT_PATTERN,
    URL_PATTERN,
    UUID_PATTERN,
    Accepted,
    DatabaseHealth,
    Health,
    Message,
)

JSON = "application/json"
REF_TEMPLATE = "#/components/schemas/{model}"
GENERATED: tuple[type[BaseModel], ...] = (Accepted, Message, Health, DatabaseHealth)


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema: str) -> dict[str, Any]:
    return {JSON: {"schema": _ref("schemas", schema)}}


def _error(description: str, **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": _json("Error")}
    if headers:
        response["headers"] = {name: _ref("headers", ref) for name, ref in headers.items()}
    return response


def _header(name: str, description: str, schema: dict[str, Any], *, required: bool) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "description": description, "schema": schema}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


def _untitled(node: Any) -> Any:
    """A pydantic schema without the titles it gives every model and field (the names say it already)."""
    if isinstance(node, dict):
        return {key: _untitled(value) for key, value in node.items() if not (key == "title" and isinstance(value, str))}
    if isinstance(node, list):
        return [_untitled(value) for value in node]
    return node


def model_components(*models: type[BaseModel]) -> dict[str, Any]:
    """Each model's JSON schema as a component, with the models it refers to beside it."""
    components: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        components |= schema.pop("$defs", {})
        components[model.__name__] = schema
    untitled: dict[str, Any] = _untitled(components)
    return untitled


def _schemas(settings: Settings) -> dict[str, Any]:
    identifier = {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS, "pattern": LINE_PATTERN}
    content = {"type": "string", "minLength": 1, "maxLength": settings.max_content_chars, "pattern": TEXT_PATTERN}
    text = {"type": "string"}
    return model_components(*GENERATED) | {
        "MessageRequest": {
            "type": "object",
            "required": ["client_id", "content"],
            "properties": {
                "client_id": identifier | {"description": "The customer's id on the platform."},
                "content": content | {"description": "The customer's words (tab and newlines allowed)."},
                "message_id": _nullable(identifier) | {"description": "The platform's id of this message."},
            },
        },
        "Error": _object(
            {
                "error": _object(
                    {
                        "code": text,
                        "message": text,
                        "field": text | {"description": "The header or field at fault."},
                        "scope": {"type": "string", "enum": ["client", "chat"]}
                        | {"description": "The rate limit that refused (429 only)."},
                    },
                    required=["code", "message"],
                )
            }
        ),
    }


def _parameters() -> dict[str, Any]:
    return {
        "WebhookUrl": _header(
            WEBHOOK_URL_HEADER,
            "Where the reply is delivered (http or https, public address).",
            {"type": "string", "format": "uri", "maxLength": MAX_WEBHOOK_URL_CHARS, "pattern": URL_PATTERN},
            required=True,
        ),
        "Platform": _header(
            "X-Platform",
            "The chat platform (compared in lower case).",
            {"type": "string", "minLength": 1, "maxLength": 32, "pattern": PLATFORM_PATTERN},
            required=True,
        ),
        "ChatId": _header(
            "X-Chat-ID",
            "The chat on that platform.",
            {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS, "pattern": CHAT_ID_PATTERN},
            required=True,
        ),
        "IdempotencyKey": _header(
            "Idempotency-Key",
            "Makes retries safe: a retry with the same key and body answers for the same message.",
            {"type": "string", "minLength": 8, "maxLength": 255, "pattern": IDEMPOTENCY_KEY_PATTERN},
            required=False,
        ),
        "Prefer": _header(
            "Prefer",
            "`respond-async` answers 202 at once instead of waiting for the reply (RFC 7240).",
            {"type": "string"},
            required=False,
        ),
        "MessageId": {
            "name": "message_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "format": "uuid", "pattern": UUID_PATTERN},
        },
    }


def _headers() -> dict[str, Any]:
    return {
        "Location": {"required": True, "schema": {"type": "string"}, "description": "Where to read the message."},
        "PreferenceApplied": {"schema": {"type": "string", "enum": ["respond-async"]}},
        "RetryAfter": {"required": True, "schema": {"type": "string"}, "description": "Seconds to wait."},
        "WWWAuthenticate": {"required": True, "schema": {"type": "string"}},
    }


def _paths(secured: bool) -> dict[str, Any]:
    object_ = {"type": "object"}
    security: dict[str, Any] = {"security": [{"bearerAuth": []}]} if secured else {}
    unauthorized = {"401": _error("The intake key is missing or wrong.", **{"WWW-Authenticate": "WWWAuthenticate"})}
    unavailable = _error("The database is unavailable.", **{"Retry-After": "RetryAfter"})
    accepted = {
        "description": "Accepted; the reply is not ready yet (or `Prefer: respond-async` was sent).",
        "headers": {
            "Location": _ref("headers", "Location"),
            "Preference-Applied": _ref("headers", "PreferenceApplied"),
        },
        "content": _json("Accepted"),
    }
    create = {
        "operationId": "createMessage",
        "summary": "Accept a customer's message and answer with the reply when it is ready in time.",
        "parameters": [_ref("parameters", name) for name in ("WebhookUrl", "Platform", "ChatId", "IdempotencyKey")]
        + [_ref("parameters", "Prefer")],
        "requestBody": {"required": True, "content": _json("MessageRequest")},
        "responses": {
            "200": {"description": "Answered, handed off or failed.", "content": _json("Message")},
            "202": accepted,
            "400": _error("The body is not UTF-8 JSON."),
            **(unauthorized if secured else {}),
            "413": _error("The body is too large."),
            "415": _error("The body is not JSON."),
            "422": _error("A header or field is invalid, or the Idempotency-Key was used with another request."),
            "429": _error(
                "Over the client's or the chat's rate limit (`scope` says which); nothing was stored.",
                **{"Retry-After": "RetryAfter"},
            ),
            "503": unavailable,
        },
    } | security
    read = {
        "operationId": "getMessage",
        "summary": "A message's state, classification and reply.",
        "parameters": [_ref("parameters", "MessageId")],
        "responses": {
            "200": {"description": "The message.", "content": _json("Message")},
            **(unauthorized if secured else {}),
            "404": _error("No such message."),
            "503": unavailable,
        },
    } | security
    health_unavailable = {"Retry-After": _ref("headers", "RetryAfter")}
    return {
        "/api/messages/": {"post": create},
        "/api/messages": {"post": create | {"operationId": "createMessageNoSlash"}},
        "/api/messages/{message_id}": {"get": read},
        "/health": {
            "get": {
                "operationId": "health",
                "responses": {
                    "200": {"description": "Healthy.", "content": _json("Health")},
                    "503": {"description": "Degraded.", "headers": health_unavailable, "content": _json("Health")},
                },
            }
        },
        "/api/health/db": {
            "get": {
                "operationId": "databaseHealth",
                "responses": {
                    "200": {"description": "Connected.", "content": _json("DatabaseHealth")},
                    "503": {
                        "description": "Unavailable.",
                        "headers": health_unavailable,
                        "content": _json("DatabaseHealth"),
                    },
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "responses": {"200": {"description": "This document.", "content": {JSON: {"schema": object_}}}},
            }
        },
    }


def _telegram_path() -> dict[str, Any]:
    secret = {"name": "X-Telegram-Bot-Api-Secret-Token", "in": "header", "required": True, "schema": {"type": "string"}}
    return {
        "post": {
            "operationId": "telegramWebhook",
            "summary": "Telegram's updates (registered with `neiromatrius telegram set-webhook`).",
            "parameters": [secret],
            "requestBody": {"required": True, "content": _json("TelegramUpdate")},
            "responses": {
                "200": {
                    "description": "Stored (or nothing to store).",
                    "content": {JSON: {"schema": {"type": "object"}}},
                },
                "400": _error("The body is not UTF-8 JSON."),
                "401": _error("The secret token is missing or wrong.", **{"WWW-Authenticate": "WWWAuthenticate"}),
                "413": _error("The body is too large."),
                "422": _error("The update is malformed (the field is named)."),
                "503": _error("The database is unavailable; Telegram retries.", **{"Retry-After": "RetryAfter"}),
            },
        }
    }


def _telegram_schemas() -> dict[str, Any]:
    """The part of Telegram's Update the webhook reads; every other field passes through (and a message's
    fields are stored), so any JSON value goes, except strings with NUL, which Postgres cannot store."""
    storable = {"type": "string", "pattern": "^[^\\u0000]*$"}
    value = {
        "anyOf": [
            storable,
            {"type": ["number", "boolean", "null"]},
            {"type": "array", "items": _ref("schemas", "TelegramValue")},
            {
                "type": "object",
                "propertyNames": storable,
                "additionalProperties": _ref("schemas", "TelegramValue"),
            },
        ]
    }
    integer = {"type": "integer"}
    values = {"propertyNames": storable, "additionalProperties": _ref("schemas", "TelegramValue")}
    chat = {"type": "object", "required": ["id"], "properties": {"id": integer}} | values
    message = {"type": "object", "required": ["chat"], "properties": {"chat": chat}} | values
    update = {
        "type": "object",
        "required": ["update_id"],
        "properties": {"update_id": integer | {"minimum": 0}, "message": message},
    }
    return {"TelegramUpdate": update, "TelegramValue": value}


def openapi_document(settings: Settings) -> dict[str, Any]:
    secured = intake_key(settings) is not None
    paths = _paths(secured)
    if settings.telegram_enabled:
        paths["/api/telegram/webhook"] = _telegram_path()
    for path in paths.values():
        for operation in path.values():
            # The size limits run before routing, so every operation can answer them.
            operation["responses"].setdefault("413", _error("The body is too large."))
            operation["responses"]["431"] = _error("The request's headers are too large or too many.")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Neiromatrius",
            "version": __version__,
            "description": "AI replies to customers' chat messages. Errors have one shape: `Error`.",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(settings) | (_telegram_schemas() if settings.telegram_enabled else {}),
            "parameters": _parameters(),
            "headers": _headers(),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
