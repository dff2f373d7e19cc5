"""OpenAI's chat completions endpoint, mocked with respx: the bodies the real API answers with."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import respx

BASE_URL = "https://api.openai.test/v1"
MODEL = "gpt-4o-mini-2024-07-18"


def answer(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "category": "greeting",
        "intent": "test_message",
        "sentiment": "positive",
        "urgency": "low",
        "language": "ru",
        "confidence": 0.93,
        "needs_human": False,
        "reply": "Здравствуйте! Спасибо за сообщение. Чем можем помочь?",
    }
    return data | overrides


def completion(content: str | None, *, finish_reason: str = "stop", refusal: str | None = None) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1764115200,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish_reason,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                }
            ],
            "usage": {"prompt_tokens": 321, "completion_tokens": 54, "total_tokens": 375},
        },
    )


def answered(**overrides: Any) -> httpx.Response:
    return completion(json.dumps(answer(**overrides), ensure_ascii=False))


def error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"message": f"mocked {code}", "type": code, "param": None, "code": code}}
    return httpx.Response(status, json=body, headers=headers or {})


@contextmanager
def mocked_openai() -> Iterator[respx.Route]:
    """Mock the completions route; everything else (the stack, webhook receivers) goes through for real."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        router.route(host="127.0.0.1").pass_through()
        route = router.post(f"{BASE_URL}/chat/completions")
        yield route
