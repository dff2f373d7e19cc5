"""The local webhook inbox: verifies each delivery's Standard Webhooks signature and shows what arrived."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks import Webhook

from neiromatrius.inbox import WebhookInbox

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER = "whsec_" + base64.b64encode(b"x" * 32).decode()


@pytest.fixture
def inbox() -> Iterator[WebhookInbox]:
    server = WebhookInbox(SECRET, 0)
    server.start()
    yield server
    server.stop()


def signed(secret: str, webhook_id: str, body: str) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, now, body),
        "content-type": "application/json",
    }


def test_a_signed_delivery_is_accepted_and_shown(inbox: WebhookInbox, capsys: pytest.CaptureFixture[str]) -> None:
    body = json.dumps({"type": "message.replied", "data": {"response": "Здравствуйте!"}}, ensure_ascii=False)
    answer = httpx.post(f"{inbox.url}/webhook", content=body.encode(), headers=signed(SECRET, "msg_1", body))
    assert answer.status_code == 204

    [shown] = httpx.get(f"{inbox.url}/webhook").json()["deliveries"]
    assert (shown["webhook_id"], shown["signature"], shown["path"]) == ("msg_1", "valid", "/webhook")
    assert shown["event"]["data"]["response"] == "Здравствуйте!"
    assert {"webhook-id", "webhook-timestamp", "webhook-signature", "content-type"} <= set(shown["headers"])
    line = capsys.readouterr().out
    assert "webhook-id=msg_1 ✅ signature valid" in line
    assert "Здравствуйте" not in line  # the log line never carries the body


def test_a_delivery_signed_with_another_secret_is_refused_and_shown_invalid(inbox: WebhookInbox) -> None:
    body = '{"type": "message.replied"}'
    assert httpx.post(inbox.url, content=body.encode(), headers=signed(OTHER, "msg_2", body)).status_code == 401
    unsigned = {"content-type": "application/json"}
    assert httpx.post(inbox.url, content=b"not json", headers=unsigned).status_code == 401

    deliveries = httpx.get(inbox.url).json()["deliveries"]
    assert [d["signature"] for d in deliveries] == ["invalid", "invalid"]
    assert deliveries[0]["event"] is None and deliveries[1]["webhook_id"] == "msg_2"  # newest first
    assert all(d["problem"] for d in deliveries)
