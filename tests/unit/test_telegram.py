"""Telegram without Telegram: updates → messages, splitting, and sendMessage's answers (respx)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from neiromatrius.core.delivery import PlatformDeliverer
from neiromatrius.core.models import DeliveryAttempt, DeliveryJob, DeliveryOutcome
from neiromatrius.errors import InputError
from neiromatrius.telegram.bot_api import MAX_MESSAGE_UNITS, TelegramBotApi, TelegramDeliverer, split_text
from neiromatrius.telegram.updates import incoming_from_update
from tests.support.fakes import FakeDeliverer

TOKEN = "123456:" + "A" * 35
API = "https://telegram.test"
SEND = f"{API}/bot{TOKEN}/sendMessage"


def update(message: dict[str, Any] | None = None, number: int = 7001, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"update_id": number, **extra}
    if message is not None:
        body["message"] = {"message_id": 11, "date": 1764115200, "chat": {"id": 4242, "type": "private"}} | message
    return body


def test_text_message_becomes_a_pending_telegram_message() -> None:
    incoming = incoming_from_update(update({"from": {"id": 99, "is_bot": False}, "text": "Где заказ?"}), 4000)
    assert incoming is not None
    assert (incoming.client_id, incoming.platform, incoming.chat_id) == ("telegram:99", "telegram", "4242")
    assert incoming.content == "Где заказ?"
    assert incoming.platform_message_id == "7001"
    assert incoming.handoff_reason is None and incoming.payload is None and incoming.webhook_url is None


def test_a_caption_is_read_and_the_media_kept() -> None:
    message = {"from": {"id": 5}, "photo": [{"file_id": "F1"}], "caption": "Вот чек"}
    incoming = incoming_from_update(update(message), 4000)
    assert incoming is not None
    assert incoming.content == "Вот чек" and incoming.handoff_reason is None
    assert incoming.payload is not None and incoming.payload["photo"] == [{"file_id": "F1"}]


@pytest.mark.parametrize("kind", ["photo", "sticker", "voice", "location"])
def test_content_without_text_is_kept_for_a_human(kind: str) -> None:
    message = {"from": {"id": 5}, kind: {"file_id": "X"}}
    incoming = incoming_from_update(update(message), 4000)
    assert incoming is not None
    assert incoming.content == f"[{kind}]"
    assert incoming.handoff_reason == f"unsupported content: {kind}"
    assert incoming.payload is not None and incoming.payload[kind] == {"file_id": "X"}


def test_a_text_over_the_limit_is_kept_whole_and_handed_over() -> None:
    text = "слово " * 100
    incoming = incoming_from_update(update({"from": {"id": 5}, "text": text}), 50)
    assert incoming is not None
    assert incoming.content == text[:50]
    assert incoming.handoff_reason == "message longer than 50 characters"
    assert incoming.payload is not None and incoming.payload["text"] == text


@pytest.mark.parametrize(
    "body",
    [
        update(None, edited_message={"chat": {"id": 1}, "text": "edit"}),
        update(None, callback_query={"id": "q"}),
        update({"from": {"id": 8, "is_bot": True}, "text": "beep"}),
    ],
    ids=["edit", "callback", "from-a-bot"],
)
def test_updates_without_a_customer_message_are_not_stored(body: dict[str, Any]) -> None:
    assert incoming_from_update(body, 4000) is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": {"chat": {"id": 1}, "text": "x"}}, "update_id"),
        ({"update_id": "7", "message": {"chat": {"id": 1}, "text": "x"}}, "update_id"),
        ({"update_id": -1}, "update_id"),
        ({"update_id": 7, "message": 5}, "message"),
        ({"update_id": 7, "message": "hi"}, "message"),
        ({"update_id": 7, "message": {"text": "x"}}, "message.chat.id"),
        ({"update_id": 7, "message": {"chat": {"id": "1"}, "text": "x"}}, "message.chat.id"),
    ],
)
def test_malformed_updates_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        incoming_from_update(body, 4000)
    assert caught.value.field == field


@pytest.mark.parametrize(
    "message",
    [
        pytest.param({"text": "a\x00b"}, id="nul-in-text"),
        pytest.param({"text": "a\ud800b"}, id="surrogate-in-text"),
        pytest.param({"photo": [], "caption": "\udfff"}, id="surrogate-in-caption"),
        pytest.param({"photo": [{"file_id": "x\x00"}]}, id="nul-in-stored-payload"),
        pytest.param({"text": "hi", "entities": [{"\x00": 1}]}, id="nul-in-a-key"),
        pytest.param({"text": "hi", "x": [[[["\ud83d"]]]]}, id="surrogate-nested"),
    ],
)
def test_a_message_the_database_cannot_hold_is_refused(message: dict[str, Any]) -> None:
    # Postgres refuses NUL in text and jsonb, and a lone surrogate cannot be encoded: refused, not a 5xx later.
    with pytest.raises(InputError) as caught:
        incoming_from_update(update(message), 4000)
    assert caught.value.field == "message"


def test_integers_written_as_floats_are_integers_as_json_schema_counts_them() -> None:
    body = {"update_id": 7001.0, "message": {"chat": {"id": 4242.0}, "from": {"id": 99.0}, "text": "hi"}}
    incoming = incoming_from_update(body, 4000)
    assert incoming is not None
    assert (incoming.platform_message_id, incoming.chat_id, incoming.client_id) == ("7001", "4242", "telegram:99")


def test_a_deeply_nested_message_is_checked_without_recursion() -> None:
    nested: Any = "fine"
    for _ in range(5000):
        nested = [nested]
    incoming = incoming_from_update(update({"text": "hi", "x": nested}), 4000)
    assert incoming is not None and incoming.content == "hi"


def test_a_chat_without_a_sender_is_its_own_client() -> None:
    incoming = incoming_from_update(update({"text": "hi"}), 4000)
    assert incoming is not None and incoming.client_id == "telegram:4242"


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_short_text_is_one_part() -> None:
    assert split_text("hello") == ["hello"]
    assert split_text("x" * MAX_MESSAGE_UNITS) == ["x" * MAX_MESSAGE_UNITS]


def test_long_text_is_split_at_spaces_within_the_limit_losing_nothing() -> None:
    text = " ".join(f"word{i}" for i in range(2000))
    parts = split_text(text)
    assert len(parts) > 1
    assert "".join(parts) == text
    assert all(units(part) <= MAX_MESSAGE_UNITS for part in parts)
    assert all(part.endswith(" ") for part in parts[:-1])


def test_the_limit_counts_utf16_units_and_never_halves_an_emoji() -> None:
    text = "😀" * 3000  # 6000 UTF-16 units
    parts = split_text(text)
    assert "".join(parts) == text
    assert [units(part) for part in parts] == [4096, 1904]


def job(content: str = "Ответ", platform: str = "telegram") -> DeliveryJob:
    return DeliveryJob(
        reply_id="r-1", message_id="m-1", conversation_id="c-1", client_id="telegram:5", platform=platform,
        chat_id="-100500", webhook_url=None, content=content, classification=None, attempt=1,
        created_at=datetime(2026, 11, 26, tzinfo=UTC),
    )  # fmt: skip


def ok() -> httpx.Response:
    return httpx.Response(200, json={"ok": True, "result": {"message_id": 1}})


def too_many(retry_after: int) -> httpx.Response:
    body = {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests",
        "parameters": {"retry_after": retry_after},
    }
    return httpx.Response(429, json=body)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


async def deliver(content: str, *responses: httpx.Response) -> tuple[DeliveryAttempt, respx.Route, Sleeps]:
    sleeps = Sleeps()
    async with httpx.AsyncClient() as http:
        with respx.mock(assert_all_mocked=True) as router:
            route = router.post(SEND).mock(side_effect=list(responses))
            attempt = await TelegramDeliverer(TelegramBotApi(http, TOKEN, API), sleep=sleeps).deliver(job(content))
    return attempt, route, sleeps


async def test_a_reply_is_sent_as_plain_text() -> None:
    attempt, route, _ = await deliver("<b>*Hi*</b> [x](http://evil)", ok())
    assert attempt.outcome is DeliveryOutcome.DELIVERED and attempt.webhook_id == "r-1"
    sent = json.loads(route.calls.last.request.content)
    assert sent["chat_id"] == -100500 and sent["text"] == "<b>*Hi*</b> [x](http://evil)"
    assert "parse_mode" not in sent


async def test_a_long_reply_goes_out_in_parts_in_order() -> None:
    text = "a " * 5000
    attempt, route, _ = await deliver(text, ok(), ok(), ok())
    assert attempt.outcome is DeliveryOutcome.DELIVERED
    texts = [json.loads(call.request.content)["text"] for call in route.calls]
    assert len(texts) == 3 and "".join(texts) == text


async def test_a_short_429_is_waited_out_then_sent() -> None:
    attempt, route, sleeps = await deliver("hi", too_many(3), ok())
    assert attempt.outcome is DeliveryOutcome.DELIVERED
    assert route.call_count == 2 and sleeps.calls == [3.0]


async def test_a_long_429_ends_the_attempt_with_telegrams_retry_after() -> None:
    attempt, route, sleeps = await deliver("hi", too_many(120))
    assert attempt.outcome is DeliveryOutcome.RETRY and attempt.retry_after == 120.0
    assert attempt.status_code == 429 and route.call_count == 1 and sleeps.calls == []


async def test_a_blocked_bot_fails_for_good_and_no_error_holds_the_token() -> None:
    refused = httpx.Response(403, json={"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked"})
    attempt, _, _ = await deliver("hi", refused)
    assert attempt.outcome is DeliveryOutcome.FAILED and attempt.status_code == 403
    assert attempt.error is not None and "bot was blocked" in attempt.error


async def test_network_errors_are_retried_without_the_url_in_the_error() -> None:
    attempt, _, _ = await deliver("hi", httpx.ConnectError(f"cannot reach {SEND}"))
    assert attempt.outcome is DeliveryOutcome.RETRY
    assert attempt.error is not None and TOKEN not in attempt.error and "ConnectError" in attempt.error
    assert attempt.url is None


def recording(name: str) -> FakeDeliverer:
    return FakeDeliverer({}, default=DeliveryAttempt(outcome=DeliveryOutcome.DELIVERED, webhook_id=name, url=None))


async def test_replies_are_routed_by_platform() -> None:
    webhooks, telegram = recording("webhooks"), recording("telegram")
    router = PlatformDeliverer(webhooks, {"telegram": telegram})
    assert (await router.deliver(job(platform="telegram"))).webhook_id == "telegram"
    assert (await router.deliver(job(platform="test"))).webhook_id == "webhooks"
    assert [j.platform for j in telegram.jobs] == ["telegram"] and [j.platform for j in webhooks.jobs] == ["test"]


async def test_a_platform_without_settings_is_retried_not_dropped() -> None:
    attempt = await PlatformDeliverer(recording("webhooks"), {"telegram": None}).deliver(job())
    assert attempt.outcome is DeliveryOutcome.RETRY
    assert attempt.error == "telegram is not configured on this listener"
