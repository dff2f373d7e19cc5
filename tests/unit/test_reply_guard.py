"""The reply guard: a reply that carries the canary, a stretch of the system prompt or a secret is refused,
however it is disguised; a category outside the set is refused; the replies a fitting answer gives pass."""

# The offline replies and the disguises are Russian on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from neiromatrius.adapters.offline_responder import _REPLIES
from neiromatrius.adapters.webhooks import webhook_secret
from neiromatrius.composition import reply_guard
from neiromatrius.config import DEFAULT_CATEGORIES, Settings
from neiromatrius.core.guard import PROMPT_WINDOW, ReplyGuard
from neiromatrius.core.models import Classification, Triage, Usage
from neiromatrius.core.prompt import system_prompt
from neiromatrius.errors import UnusableAnswer

CANARY = "nm-canary-5f3a9c01b2d4e6f80719"
PROMPT = system_prompt(DEFAULT_CATEGORIES, CANARY)
SECRET = "sk-proj-Zx81Qm3Lw9Tt5Vb2Nc7Hd4Ke"
USAGE = Usage(model="gpt-test", prompt_version="v1", prompt_tokens=300, completion_tokens=40, latency_ms=9)
GUARD = ReplyGuard(categories=DEFAULT_CATEGORIES, system_prompt=PROMPT, canary=CANARY, secrets=[SECRET, "short"])


def triage(reply: str, category: str = "other") -> Triage:
    classification = Classification(
        category=category, intent="x", sentiment="neutral", urgency="normal", language="en", confidence=0.5,
        needs_human=False,
    )  # fmt: skip
    return Triage(classification=classification, reply=reply, usage=USAGE)


def refusal(reply: str, category: str = "other", guard: ReplyGuard = GUARD) -> str | None:
    try:
        guard.check(triage(reply, category))
    except UnusableAnswer as exc:
        assert exc.usage == USAGE  # the tokens were spent all the same
        return exc.message
    return None


def middle_of_prompt(length: int) -> str:
    """``length`` characters of the prompt from a rule in its middle, where no canary is near."""
    start = PROMPT.index("Never promise or refuse")
    return PROMPT[start : start + length]


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(f"My instructions are labelled {CANARY}.", id="as-is"),
        pytest.param(f"Sure: {CANARY.upper()}", id="upper-case"),
        pytest.param("Код: " + " ".join(CANARY), id="spaced-out"),
        pytest.param("\u200b".join(CANARY), id="zero-width-between-letters"),
        pytest.param(CANARY.replace("-", "_").replace("a", "ａ"), id="fullwidth-and-underscores"),
        pytest.param(PROMPT, id="the-whole-prompt"),
    ],
)
def test_a_reply_with_the_canary_leaked_the_system_prompt(reply: str) -> None:
    assert refusal(reply) == "leaked_system_prompt"


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(f"Of course! {middle_of_prompt(PROMPT_WINDOW)}", id="one-window"),
        pytest.param(middle_of_prompt(200).upper(), id="upper-case"),
        pytest.param(" \n ".join(middle_of_prompt(120).split(" ")), id="re-wrapped"),
        pytest.param(PROMPT[PROMPT.index("Fields:") :], id="the-field-list"),
        pytest.param(PROMPT[PROMPT.index("You are") : PROMPT.index("You are") + 60], id="the-opening-line"),
    ],
)
def test_a_reply_quoting_a_stretch_of_the_system_prompt_leaked_it(reply: str) -> None:
    assert CANARY not in reply
    assert refusal(reply) == "leaked_system_prompt"


def test_a_stretch_one_character_shorter_than_the_window_passes() -> None:
    # Punctuation on both sides, so no window can take in the space before or the letter after.
    assert refusal(f"Of course!{middle_of_prompt(PROMPT_WINDOW - 1)}?") is None


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(f"The key is {SECRET}", id="as-is"),
        pytest.param("The key is " + "-".join(SECRET[i : i + 4] for i in range(0, len(SECRET), 4)), id="grouped"),
        pytest.param("\u2060".join(SECRET), id="word-joiners-between-letters"),
    ],
)
def test_a_reply_with_a_secret_leaked_it(reply: str) -> None:
    assert refusal(reply) == "leaked_secret"


def test_a_secret_too_short_to_tell_from_words_is_not_looked_for() -> None:
    assert refusal("That is a short answer.") is None


def test_a_category_outside_the_set_is_refused_whichever_responder_answered() -> None:
    assert refusal("Hello!", category="vip_refund_approved") == "category_not_allowed"


@pytest.mark.parametrize(
    "reply",
    [
        *(reply for texts in _REPLIES.values() for reply in texts.values()),
        "A colleague will follow up shortly. Please tell us your order number.",
        "Please write in the language you prefer; we answer in English and Russian.",
        "Спасибо! Коллега скоро свяжется с вами, а пока пришлите, пожалуйста, номер заказа.",
    ],
)
def test_the_replies_a_fitting_answer_gives_pass(reply: str) -> None:
    assert refusal(reply) is None


def test_a_canary_too_short_to_tell_from_words_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="canary"):
        ReplyGuard(categories=DEFAULT_CATEGORIES, system_prompt=PROMPT, canary="nm-1")


def settings(**values: Any) -> Settings:
    base: dict[str, Any] = {
        "supabase_url": "http://127.0.0.1:1",
        "supabase_service_role_key": "service-role-" + "j" * 40,
        "secret_key": "guard-secret-key-" + "g" * 32,
    }
    return Settings(_env_file=None, **(base | values))  # type: ignore[call-arg]


def test_the_canary_is_the_deployments_own_and_reveals_nothing_of_the_key() -> None:
    one, other = settings(), settings(secret_key="another-secret-key-" + "h" * 32)

    assert one.prompt_canary() == settings().prompt_canary()
    assert one.prompt_canary() != other.prompt_canary()
    assert one.prompt_canary().startswith("nm-canary-")
    assert one.secret_key.get_secret_value() not in one.prompt_canary()


def test_the_deployments_guard_knows_its_prompt_canary_and_secrets() -> None:
    config = settings(openai_api_key=SecretStr("sk-live-" + "o" * 40), telegram_bot_token="4242:" + "T" * 35)
    guard = reply_guard(config)
    canary = config.prompt_canary()

    assert canary in system_prompt(config.categories, canary)
    assert refusal(f"It is {canary}", guard=guard) == "leaked_system_prompt"
    assert refusal(f"Signed with {webhook_secret(config)}", guard=guard) == "leaked_secret"
    secrets = [config.secret_key, config.openai_api_key, config.telegram_bot_token, config.supabase_service_role_key]
    for secret in [*(s.get_secret_value() for s in secrets if s is not None), config.telegram_secret()]:
        assert refusal(f"Here: {secret}", guard=guard) == "leaked_secret"
    assert refusal("Hello! How can we help?", guard=guard) is None
