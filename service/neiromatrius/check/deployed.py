"""The post-deploy checks, against the API's URL: the two health endpoints and the checklist's test message."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from .model import Check

TEST_MESSAGE = {"client_id": "check_client", "content": "Привет! Тестовое сообщение"}
TERMINAL_STATES = ("answered", "draft", "handoff", "failed")
_UNREACHABLE_FIX = "check that the API runs and that --url is its public address (Dokploy domain, proxy)"


def _unreachable(name: str, exc: httpx.HTTPError, base: str) -> Check:
    return Check.failed(name, f"no answer from {base} ({type(exc).__name__})", _UNREACHABLE_FIX)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


async def health(http: httpx.AsyncClient, base: str) -> Check:
    name = "/health"
    try:
        response = await http.get(f"{base}/health")
    except httpx.HTTPError as exc:
        return _unreachable(name, exc, base)
    body = _json(response)
    expected = {"status": "ok", "database": "ok"}
    if (
        response.status_code != 200
        or not isinstance(body, dict)
        or {key: body.get(key) for key in expected} != expected
        or body.get("redis") not in ("ok", "unavailable")
    ):
        detail = f"answered {response.status_code} {response.text[:120]}"
        return Check.failed(name, detail, "read the API's log: the database or the API itself is not ready")
    return Check.passed(name, f"answers status ok, database ok, redis {body['redis']}")


async def health_db(http: httpx.AsyncClient, base: str) -> Check:
    name = "/api/health/db"
    try:
        response = await http.get(f"{base}/api/health/db")
    except httpx.HTTPError as exc:
        return _unreachable(name, exc, base)
    if response.status_code != 200 or _json(response) != {"status": "ok", "database": "connected"}:
        detail = f"answered {response.status_code} {response.text[:120]}"
        return Check.failed(name, detail, "the API cannot reach its database: check its SUPABASE_* settings")
    return Check.passed(name, "answers status ok, database connected")


async def test_message(http: httpx.AsyncClient, base: str, intake_key: str | None, within: float) -> Check:
    """POST the checklist's message; on 202, read it back until it has an answer or ``within`` runs out."""
    name = "Test message"
    headers = {
        "X-Webhook-URL": "https://test-webhook.com/test",
        "X-Platform": "test",
        "X-Chat-ID": f"check-{uuid.uuid4().hex[:12]}",
    }
    if intake_key:
        headers["Authorization"] = f"Bearer {intake_key}"
    deadline = time.monotonic() + within
    try:
        response = await http.post(f"{base}/api/messages/", headers=headers, json=TEST_MESSAGE, timeout=within)
        body = _json(response)
        while response.status_code == 202 and isinstance(body, dict) and time.monotonic() < deadline:
            await asyncio.sleep(1.0)  # a client polling a server: nothing to wait on but time
            response = await http.get(f"{base}/api/messages/{body['id']}", headers=headers)
            body = _json(response)
            if isinstance(body, dict) and body.get("state") in TERMINAL_STATES:
                break
    except httpx.HTTPError as exc:
        return _unreachable(name, exc, base)
    return _judge(name, response, body)


def _judge(name: str, response: httpx.Response, body: Any) -> Check:
    if response.status_code == 401:
        fix = "set INTAKE_API_KEY here (or in --env-file) to the API's value"
        return Check.failed(name, "the API wants INTAKE_API_KEY (401)", fix, "INTAKE_API_KEY")
    if response.status_code not in (200, 202) or not isinstance(body, dict):
        detail = f"answered {response.status_code} {response.text[:160]}"
        return Check.failed(name, detail, "read the API's log for this request")
    classification, reply = body.get("classification"), body.get("response")
    if not isinstance(classification, dict) or not reply:
        detail = f"state {body.get('state')!r}, no classification and response yet"
        fix = "check that the listener runs and reaches OpenAI (its log, OPENAI_API_KEY)"
        return Check.failed(name, detail, fix)
    category = classification.get("category")
    return Check.passed(name, f"gets a classification ({category}) and a response (model {body.get('model')})")
