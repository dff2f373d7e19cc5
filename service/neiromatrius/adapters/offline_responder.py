"""``OfflineResponder``: deterministic Russian and English rules, for machines without ``OPENAI_API_KEY``.

It lets the whole pipeline run on a fresh machine. Its usage names the model ``offline-rules-v1``, so
every stored reply says it came from the rules and not from a language model. Pure: no I/O.
"""

# The rules and replies are Russian on purpose; ruff would flag every Cyrillic letter that looks Latin.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..config import DEFAULT_CATEGORIES
from ..core.categories import CategoryCatalog, as_catalog
from ..core.models import ClaimedMessage, Classification, ContextMessage, Triage, Usage
from ..core.prompt import PROMPT_VERSION

OFFLINE_MODEL = "offline-rules-v1"

Language = Literal["ru", "en"]


def _stems(spec: str) -> tuple[re.Pattern[str], ...]:
    """Semicolon-separated patterns that match at the start of a word (``цен`` finds «цена», not «оценка»)."""
    return tuple(re.compile(rf"(?<!\w){pattern.strip()}") for pattern in spec.split(";"))


@dataclass(frozen=True)
class _Rule:
    category: str
    intent: str
    patterns: tuple[re.Pattern[str], ...]


# In priority order: the first rule that matches decides, so risky topics win over greetings and thanks.
# The text is lower-cased with «ё» read as «е» before matching.
_RULES = (
    _Rule("refund", "request_refund", _stems(r"возврат; верн\w* деньг; refund; money back")),
    _Rule(
        "complaint", "complain", _stems("жалоб; ужасн; плох; отвратит; безобраз; complain; terrible; awful; horrible")
    ),
    _Rule(
        "technical_support",
        "report_problem",
        _stems(
            r"не работает; ошибк; сломал; глючит; баг\b; error; bugs?\b; broken; crash; (doesn'?t|does not|not) work"
        ),
    ),
    _Rule("billing", "billing_question", _stems("счет; оплат; списа; invoice; payment; billing; charge")),
    _Rule("pricing", "ask_price", _stems("цен; стоимост; сколько стоит; прайс; тариф; pric; cost; how much")),
    _Rule(
        "order_status",
        "order_status_inquiry",
        _stems(r"заказ(?!ать); доставк; доставлен; посылк; трек; order; deliver; tracking; shipping"),
    ),
    _Rule("sales", "purchase_intent", _stems("купить; куплю; покупк; приобрест; заказать; закажу; buy; purchas")),
    _Rule("feedback", "give_thanks", _stems("спасибо; благодар; отзыв; thank; thx; feedback")),
    _Rule(
        "greeting",
        "greet",
        _stems(
            r"привет; здравствуй; добр\w+ (день|дня|утр|вечер); hello; hi\b; hey\b; good (morning|afternoon|evening)"
        ),
    ),
)
_HUMAN = _stems("оператор; человек; живой; менеджер; сотрудник; human; agent; operator; manager; real person")
_URGENT = (*_stems("срочн; немедленн; urgent; asap; immediately"), re.compile("!!!"))
_POSITIVE = _stems(
    "спасибо; благодар; отличн; хорош; супер; прекрасн; (?<!не )нрав; thank; great; excellent; awesome; love; perfect"
)
_NEGATIVE = _stems(
    r"плох; ужасн; отвратит; недовол; разочаров; безобраз; не нрав; не работает; bad\b; terrible; awful; horrible; "
    "angry; disappoint; worst; hate; not work"
)
_HANDOFF_CATEGORIES = frozenset({"refund", "complaint"})
_CALM_CATEGORIES = frozenset({"greeting", "feedback"})

_REPLIES: dict[str, dict[Language, str]] = {
    "greeting": {
        "ru": "Здравствуйте! Спасибо, что написали. Чем мы можем вам помочь?",
        "en": "Hello! Thanks for reaching out. How can we help you today?",
    },
    "pricing": {
        "ru": "Спасибо за вопрос о цене. Уточните, пожалуйста, какой товар или услуга вас интересует, "
        "и мы подскажем актуальную стоимость.",
        "en": "Thanks for asking about pricing. Please tell us which product or service you are interested in, "
        "and we will share the current price.",
    },
    "sales": {
        "ru": "Спасибо за интерес! Напишите, пожалуйста, что именно вы хотите приобрести, и мы поможем оформить заказ.",
        "en": "Thank you for your interest! Please tell us what you would like to buy, and we will help you order it.",
    },
    "order_status": {
        "ru": "Спасибо за обращение. Пришлите, пожалуйста, номер заказа, и мы проверим его статус.",
        "en": "Thanks for getting in touch. Please send us your order number, and we will check its status.",
    },
    "technical_support": {
        "ru": "Сожалеем, что возникла проблема. Опишите, пожалуйста, что происходит и после каких действий, "
        "и мы разберёмся.",
        "en": "Sorry you are running into a problem. Please describe what happens and what you did before it, "
        "and we will look into it.",
    },
    "billing": {
        "ru": "Спасибо за вопрос об оплате. Пришлите, пожалуйста, номер счёта или заказа, и мы проверим детали.",
        "en": "Thanks for your question about billing. Please send us the invoice or order number, "
        "and we will check the details.",
    },
    "refund": {
        "ru": "Спасибо, что сообщили. Мы передали ваш запрос сотруднику, он свяжется с вами в ближайшее время.",
        "en": "Thank you for letting us know. We have passed your request to a colleague, "
        "who will get back to you shortly.",
    },
    "complaint": {
        "ru": "Нам очень жаль, что так получилось. Мы передали ваше обращение сотруднику, "
        "он свяжется с вами в ближайшее время.",
        "en": "We are very sorry about this. We have passed your message to a colleague, "
        "who will get back to you shortly.",
    },
    "feedback": {
        "ru": "Спасибо за ваш отзыв! Нам очень приятно.",
        "en": "Thank you for your feedback! We really appreciate it.",
    },
    "handoff": {
        "ru": "Конечно. Мы передали ваше обращение сотруднику, он скоро ответит вам здесь.",
        "en": "Of course. We have passed your message to a colleague, who will reply to you here shortly.",
    },
    "other": {
        "ru": "Спасибо за сообщение! Уточните, пожалуйста, чем мы можем помочь.",
        "en": "Thanks for your message! Could you tell us a little more about how we can help?",
    },
}


class OfflineResponder:
    """Implements the ``Responder`` port with keyword rules; the same text always gets the same answer."""

    def __init__(self, categories: Sequence[str] | CategoryCatalog = DEFAULT_CATEGORIES) -> None:
        self._catalog = as_catalog(categories)

    async def respond(self, message: ClaimedMessage, context: list[ContextMessage]) -> Triage:
        return self.triage(message.text)  # a burst is read as one text

    def triage(self, content: str) -> Triage:
        text = content.lower().replace("ё", "е")
        language = _language(text)
        rule, hits = _first_rule(text)
        wants_human = _count(_HUMAN, text) > 0
        names = self._catalog.current.names
        fallback = "other" if "other" in names else names[0]
        category = rule.category if rule and rule.category in names else fallback
        needs_human = wants_human or (rule is not None and rule.category in _HANDOFF_CATEGORIES)
        classification = Classification(
            category=category,
            intent=rule.intent if rule else ("request_human" if wants_human else "general_inquiry"),
            sentiment=_sentiment(text),
            urgency=_urgency(text, rule),
            language=language,
            confidence=0.3 if rule is None or category != rule.category else min(0.5 + 0.15 * hits, 0.9),
            needs_human=needs_human,
        )
        return Triage(
            classification=classification,
            reply=_reply(rule, needs_human, language),
            usage=Usage(model=OFFLINE_MODEL, prompt_version=PROMPT_VERSION),
        )


def _count(patterns: Sequence[re.Pattern[str]], text: str) -> int:
    return sum(1 for pattern in patterns if pattern.search(text))


def _first_rule(text: str) -> tuple[_Rule | None, int]:
    for rule in _RULES:
        hits = _count(rule.patterns, text)
        if hits:
            return rule, hits
    return None, 0


def _language(text: str) -> Language:
    cyrillic = len(re.findall(r"[\u0400-\u04ff]", text))
    latin = len(re.findall(r"[a-z]", text))
    return "ru" if cyrillic and cyrillic >= latin else "en"


def _sentiment(text: str) -> Literal["positive", "neutral", "negative"]:
    score = _count(_POSITIVE, text) - _count(_NEGATIVE, text)
    return "positive" if score > 0 else "negative" if score < 0 else "neutral"


def _urgency(text: str, rule: _Rule | None) -> Literal["low", "normal", "high", "critical"]:
    signals = _count(_URGENT, text)
    if signals >= 2:
        return "critical"
    if signals == 1:
        return "high"
    return "low" if rule is not None and rule.category in _CALM_CATEGORIES else "normal"


def _reply(rule: _Rule | None, needs_human: bool, language: Language) -> str:
    if rule is not None and rule.category in _HANDOFF_CATEGORIES:
        return _REPLIES[rule.category][language]
    if needs_human:
        return _REPLIES["handoff"][language]
    return _REPLIES[rule.category if rule else "other"][language]
