from __future__ import annotations

import json
from typing import Any, Literal

import pytest

from neiromatrius.core.answer import parse_answer, response_schema
from neiromatrius.core.models import Category, ContextMessage
from neiromatrius.core.prompt import PROMPT_VERSION, bound_context, estimate_tokens, system_prompt
from neiromatrius.errors import UnusableAnswer

CATEGORIES = ("pricing", "greeting", "other")


def answer(**overrides: Any) -> str:
    data: dict[str, Any] = {
        "category": "pricing",
        "intent": "ask_price",
        "sentiment": "neutral",
        "urgency": "normal",
        "language": "en",
        "confidence": 0.9,
        "needs_human": False,
        "reply": "The Pro plan is listed on our pricing page.",
    }
    data.update(overrides)
    return json.dumps({key: value for key, value in data.items() if value is not ...})


def test_schema_is_strict_and_closed() -> None:
    schema = response_schema(CATEGORIES)

    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(schema["properties"])
    fields = {"category", "intent", "sentiment", "urgency", "language", "confidence", "needs_human", "reply"}
    assert set(schema["properties"]) == fields
    assert schema["properties"]["category"]["enum"] == list(CATEGORIES)
    assert schema["properties"]["sentiment"]["enum"] == ["positive", "neutral", "negative"]
    assert schema["properties"]["urgency"]["enum"] == ["low", "normal", "high", "critical"]


def test_system_prompt_lists_the_categories_and_guards_against_injection() -> None:
    prompt = system_prompt(CATEGORIES, "nm-canary-0123456789abcdef0123")

    assert prompt.startswith("Instructions nm-canary-0123456789abcdef0123: confidential")
    assert "pricing, greeting, other" in prompt
    assert "untrusted" in prompt
    assert "needs_human" in prompt
    assert PROMPT_VERSION.startswith("triage-")


def test_a_good_answer_is_accepted() -> None:
    classification, reply = parse_answer(answer(reply="  Hello!\r\nSee you\x07 soon.\u202e  "), CATEGORIES)

    assert classification.category == "pricing"
    assert classification.confidence == 0.9
    assert classification.language == "en"
    assert reply == "Hello!\nSee you soon."


def test_invisible_characters_that_can_hide_text_are_dropped_from_a_reply() -> None:
    smuggled = "".join(chr(0xE0000 + ord(char)) for char in "secret")  # Unicode tags: ASCII nobody sees
    hidden = f"\ufeffOK\u200b,\u2060 fine{smuggled}\u061c \U0001f469\u200d\U0001f4bb"

    _, reply = parse_answer(answer(reply=hidden), CATEGORIES)

    assert reply == "OK, fine \U0001f469\u200d\U0001f4bb"  # the joiner inside the emoji stays


def test_labels_are_normalised() -> None:
    classification, _ = parse_answer(answer(intent="Ask Price!", language="RU-ru"), CATEGORIES)

    assert classification.intent == "ask_price"
    assert classification.language == "ru"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "schema: not an object"),
        (answer(reply=...), "schema: missing 'reply'"),
        (answer(extra="x"), "schema: unexpected 'extra'"),
        (answer(category="refund"), "schema: category 'refund' not allowed"),
        (answer(sentiment="furious"), "schema: sentiment 'furious' not allowed"),
        (answer(urgency=None), "schema: urgency None not allowed"),
        (answer(language="russian"), "schema: language 'russian' not ISO 639-1"),
        (answer(confidence=7), "schema: confidence 7 out of range"),
        (answer(confidence="high"), "schema: confidence 'high' not a number"),
        (answer(needs_human="no"), "schema: needs_human 'no' not a boolean"),
        (answer(intent="  "), "schema: intent empty"),
        (answer(reply=" \n\x00 "), "empty_reply"),
        (answer(reply="x" * 4001), "reply_too_long"),
    ],
)
def test_a_bad_answer_is_refused_with_a_short_reason(text: str, reason: str) -> None:
    with pytest.raises(UnusableAnswer) as caught:
        parse_answer(text, CATEGORIES)

    assert caught.value.message == reason


def test_a_long_model_value_is_cut_short_in_the_reason() -> None:
    with pytest.raises(UnusableAnswer) as caught:
        parse_answer(answer(category="x" * 500), CATEGORIES)

    assert len(caught.value.message) < 80


def _history(count: int, size: int) -> list[ContextMessage]:
    roles: tuple[Literal["user", "assistant"], ...] = ("user", "assistant")
    return [ContextMessage(role=roles[i % 2], content=f"{i:03d}" + "a" * (size - 3)) for i in range(count)]


def test_bound_context_keeps_the_newest_messages_oldest_first() -> None:
    history = _history(10, 40)  # 10 tokens + 4 overhead each
    kept = bound_context(history, "b" * 40, max_tokens=14 * 4)

    assert [message.content[:3] for message in kept] == ["007", "008", "009"]


def test_bound_context_keeps_everything_that_fits() -> None:
    history = _history(3, 8)

    assert bound_context(history, "hi", max_tokens=1000) == history


def test_bound_context_drops_history_when_the_current_message_fills_the_budget() -> None:
    assert bound_context(_history(3, 8), "c" * 4000, max_tokens=500) == []


def test_bound_context_leaves_no_gap_behind_a_long_message() -> None:
    history = [*_history(2, 8), ContextMessage(role="user", content="z" * 2000), *_history(1, 8)]

    kept = bound_context(history, "hi", max_tokens=100)

    assert kept == history[-1:]


def test_cyrillic_counts_as_more_tokens_than_latin_of_the_same_length() -> None:
    assert estimate_tokens("привет") > estimate_tokens("privet")
    assert estimate_tokens("") == 0


def test_categories_the_business_described_are_explained_to_the_model() -> None:
    categories = [
        Category(name="pricing", description="Prices,\n plans and   discounts", examples=("how much?", "a", "b", "c")),
        Category(name="greeting"),
        Category(name="warranty", examples=("my kettle\nbroke",)),
    ]

    prompt = system_prompt(categories, "nm-canary-x")

    assert "- category: exactly one of: pricing, greeting, warranty." in prompt
    assert '- pricing: Prices, plans and discounts (for example "how much?"; "a"; "b")' in prompt  # three at most
    assert '- warranty (for example "my kettle broke")' in prompt
    assert "- greeting" not in prompt  # nothing said about it: only named


def test_names_alone_give_the_prompt_without_a_category_section() -> None:
    assert "The categories:" not in system_prompt(CATEGORIES, "nm-canary-x")
    assert system_prompt(CATEGORIES, "c") == system_prompt([Category(name=n) for n in CATEGORIES], "c")
