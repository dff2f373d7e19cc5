# Russian test messages on purpose; ruff would flag Cyrillic letters that look Latin.
# ruff: noqa: RUF001

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from neiromatrius.adapters.offline_responder import OFFLINE_MODEL, OfflineResponder
from neiromatrius.config import DEFAULT_CATEGORIES
from neiromatrius.core.models import ClaimedMessage, Triage
from neiromatrius.core.prompt import PROMPT_VERSION

CYRILLIC = re.compile(r"[\u0400-\u04ff]")


def claimed(content: str) -> ClaimedMessage:
    return ClaimedMessage(
        id="m1",
        conversation_id="c1",
        client_id="client-1",
        platform="web",
        chat_id="chat-1",
        content=content,
        attempts=1,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


async def respond(content: str, categories: tuple[str, ...] = DEFAULT_CATEGORIES) -> Triage:
    return await OfflineResponder(categories).respond(claimed(content), [])


async def test_the_checklist_message_is_a_russian_greeting() -> None:
    triage = await respond("Привет! Тестовое сообщение")

    assert triage.classification.language == "ru"
    assert triage.classification.category == "greeting"
    assert triage.classification.needs_human is False
    assert CYRILLIC.search(triage.reply)
    assert triage.usage.model == OFFLINE_MODEL == "offline-rules-v1"
    assert triage.usage.prompt_version == PROMPT_VERSION
    assert (triage.usage.prompt_tokens, triage.usage.completion_tokens) == (0, 0)


async def test_an_english_pricing_question() -> None:
    triage = await respond("Hi, how much does the Pro plan cost?")

    assert triage.classification.language == "en"
    assert triage.classification.category == "pricing"
    assert triage.classification.intent == "ask_price"
    assert not CYRILLIC.search(triage.reply)
    assert 0 < triage.classification.confidence <= 1


@pytest.mark.parametrize(
    ("content", "category"),
    [
        ("Верните деньги, пожалуйста", "refund"),
        ("I want a refund for my order", "refund"),
        ("Это ужасно, я хочу оставить жалобу", "complaint"),
        ("Terrible service, I want to complain", "complaint"),
    ],
)
async def test_refunds_and_complaints_go_to_a_human(content: str, category: str) -> None:
    triage = await respond(content)

    assert triage.classification.category == category
    assert triage.classification.needs_human is True


async def test_asking_for_a_person_goes_to_a_human() -> None:
    triage = await respond("Соедините с оператором")

    assert triage.classification.needs_human is True
    assert CYRILLIC.search(triage.reply)


@pytest.mark.parametrize(
    ("content", "urgency"),
    [
        ("This is urgent: the app shows an error", "high"),
        ("Срочно! Не работает оплата", "high"),
        ("Срочно!!! Ничего не работает", "critical"),
        ("Where is my order?", "normal"),
        ("Thanks a lot!", "low"),
    ],
)
async def test_urgency(content: str, urgency: str) -> None:
    assert (await respond(content)).classification.urgency == urgency


@pytest.mark.parametrize(
    ("content", "sentiment"),
    [("Спасибо, всё отлично!", "positive"), ("The delivery was awful", "negative"), ("Where is my order?", "neutral")],
)
async def test_sentiment(content: str, sentiment: str) -> None:
    assert (await respond(content)).classification.sentiment == sentiment


async def test_a_category_that_is_not_configured_falls_back_to_other() -> None:
    triage = await respond("How much does it cost?", categories=("sales", "other"))

    assert triage.classification.category == "other"


async def test_without_other_it_falls_back_to_the_first_category() -> None:
    triage = await respond("How much does it cost?", categories=("sales", "billing"))

    assert triage.classification.category == "sales"


async def test_the_same_text_gets_the_same_answer() -> None:
    text = "Добрый день! Где мой заказ? Срочно!!!"

    first, second = await respond(text), await respond(text)

    assert first == second
    assert first.classification.category == "order_status"
