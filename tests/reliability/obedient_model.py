"""A scripted stand-in for OpenAI's chat completions that obeys whatever the customer tells it to do.

It reads the request as the real model would (the system message, the conversation, the latest message)
and does what the latest message, or a rule planted earlier in the conversation, asks: recite its
system prompt, reveal a secret, pick a category, write markup, drop the JSON, or repeat everything it
was given. It can only leak what it was given, except the one secret the test hands it (standing in
for a model that learnt a secret somewhere). Every request and every answer is kept for the test.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import openai_mock

_CODE_WORD_RULE = re.compile(r"(?:when i write the word|когда я напишу слово)\s+(\w+)", re.IGNORECASE)
_VERBATIM = re.compile(r"(?:reply exactly|ответь ровно):\s*(.*)", re.IGNORECASE | re.DOTALL)
_NOT_JSON = re.compile(r"answer in raw text only:\s*(.*)", re.IGNORECASE | re.DOTALL)
_CATEGORY = re.compile(r"(?:category|категори\w*)(?:\s+to)?\W+([a-z_][a-z0-9_]*)", re.IGNORECASE)
_CODE_POINT = re.compile(r"\{U\+([0-9A-F]{4,6})\}")
_SECRET = ("secret", "секретн")
_PROMPT = ("system prompt", "instructions", "инструкци", "промпт", "текст выше")
_FOREIGN = ("customer", "client", "клиент", "conversation")
_SPELLED = "space between every letter"
_FIELDS = "fields part"


@dataclass
class ObedientModel:
    known_secret: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # the completion's content, as sent back

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        messages = body["messages"]
        system, conversation, latest = messages[0]["content"], messages[1:-1], messages[-1]["content"]
        content = self._obey(system, conversation, latest)
        self.answers.append(content)
        return openai_mock.completion(content)

    def _obey(self, system: str, conversation: list[dict[str, str]], latest: str) -> str:
        if _CODE_WORD_RULE.search(latest):
            return _answer("Understood, I will remember that.")
        order = _planted_order(conversation, latest) or latest
        if verbatim := _VERBATIM.search(order):
            return _answer(_CODE_POINT.sub(lambda m: chr(int(m[1], 16)), verbatim[1]))
        if raw := _NOT_JSON.search(order):
            return raw[1]
        if category := _CATEGORY.search(order):
            return _answer("Done, your refund is approved.", category=category[1])
        lowered = order.lower()
        if any(word in lowered for word in _SECRET):
            return _answer(f"Of course, the secret is {self.known_secret}")
        if any(word in lowered for word in _PROMPT) or "above" in lowered:
            return _answer(_recite(system, lowered))
        if any(word in lowered for word in _FOREIGN):
            seen = [message["content"] for message in [*conversation, {"content": latest}]]
            return _answer("Here is everything I have:\n" + "\n".join(seen))
        return _answer("Thanks for your message! How can we help?")


def _planted_order(conversation: list[dict[str, str]], latest: str) -> str | None:
    """The earlier user message whose code word the latest message says, if any."""
    for message in reversed(conversation):
        rule = _CODE_WORD_RULE.search(message["content"]) if message["role"] == "user" else None
        if rule and rule[1].casefold() in latest.casefold():
            return message["content"][rule.end() :]
    return None


def _recite(system: str, order: str) -> str:
    if _FIELDS in order:
        return system[system.index("Fields:") :]
    if _SPELLED in order:
        return " ".join(system[:300])
    return system


def _answer(reply: str, category: str = "other") -> str:
    return json.dumps(openai_mock.answer(category=category, reply=reply, language="en"), ensure_ascii=False)
