"""``OpenAIResponder``: one Chat Completions call with a strict JSON schema classifies and answers a message.

The SDK's own retries are off (``max_retries=0``): it would retry ``insufficient_quota`` like any 429.
Our loop retries what may succeed later and translates every ``openai`` exception into the error tree.

The SDK sends a body we serialized ourselves (``client.post`` with ``content``): ``chat.completions.create``
walks every nested value of its parameters against their TypedDicts, schema included, on every call, the
largest single cost of a message in the listener. Everything but the conversation and the customer's
pseudonym is the same for a list of categories, so it is serialized once per list. The answer comes back
as bytes and is validated into the SDK's ``ChatCompletion`` in one pass of pydantic-core: the SDK's own
parsing builds it field by field in Python, at 30 times the cost.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self, cast

import httpx
import openai
import pydantic
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming

from ..config import Settings
from ..core.answer import parse_answer, response_schema
from ..core.backoff import exponential
from ..core.categories import CategoryCatalog, as_catalog
from ..core.models import ClaimedMessage, ContextMessage, Triage, Usage
from ..core.prompt import PROMPT_VERSION, bound_context, system_prompt
from ..errors import ConfigError, ModelQuotaExceeded, ModelUnavailable, ResponderError, UnusableAnswer
from .retry_after import parse_retry_after

logger = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({408, 409, 429})
MAX_RETRY_AFTER = 60.0
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
CONNECT_TIMEOUT = 5.0

Sleep = Callable[[float], Awaitable[None]]


# Only what the SDK's ``chat.completions.create`` would add: the API key's bearer authentication.
_OPTIONS: openai.RequestOptions = {"security": {"bearer_auth": True}}


@dataclass(frozen=True)
class _Request:
    """What one list of categories makes of the request: the allowed names, and the body's fixed part
    (model, limits, schema, system prompt), serialized up to the messages that follow the system prompt."""

    version: int
    names: tuple[str, ...]
    head: bytes

    def body(self, messages: Sequence[ChatCompletionMessageParam], safety_identifier: str) -> bytes:
        """The whole JSON body: ``head``, the conversation and burst, and the customer's pseudonym."""
        rest = b"," + _dumps(messages)[1:-1] if messages else b""
        return b"".join((self.head, rest, b'],"safety_identifier":', _dumps(safety_identifier), b"}"))


class OpenAIResponder:
    """Implements the ``Responder`` port with OpenAI Structured Outputs."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        model: str,
        categories: Sequence[str] | CategoryCatalog,
        max_retries: int = 3,
        max_completion_tokens: int = 800,
        context_max_tokens: int = 2000,
        temperature: float = 0.2,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        identity_key: bytes = b"",
        canary: str,
    ) -> None:
        self._client = client
        # Absolute, so the SDK need not join it to its base URL on every call.
        self._url = f"{str(client.base_url).rstrip('/')}/chat/completions"
        self._identity_key = identity_key
        self._model = model
        self._catalog = as_catalog(categories)
        self._canary = canary
        self._built: _Request | None = None
        self._attempts = 1 + max_retries
        self._max_completion_tokens = max_completion_tokens
        self._context_max_tokens = context_max_tokens
        self._temperature = temperature
        self._sleep = sleep
        self._jitter = jitter

    def _request(self) -> _Request:
        """The prompt and schema of the current categories, built again only when they change."""
        snapshot = self._catalog.current
        if self._built is None or self._built.version != snapshot.version:
            fixed: CompletionCreateParamsNonStreaming = {
                "model": self._model,
                "max_completion_tokens": self._max_completion_tokens,
                "temperature": self._temperature,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "triage", "strict": True, "schema": response_schema(snapshot.names)},
                },
                "messages": [{"role": "system", "content": system_prompt(snapshot.categories, self._canary)}],
            }
            # Ends just after the system message, inside the list: the other messages are appended per call.
            head = _dumps(fixed)[: -len(b"]}")]
            self._built = _Request(version=snapshot.version, names=snapshot.names, head=head)
        return self._built

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        http_client: httpx.AsyncClient,
        *,
        sleep: Sleep = asyncio.sleep,
        catalog: CategoryCatalog | None = None,
    ) -> Self:
        """Build on the process's shared ``httpx.AsyncClient``, with our timeout and the SDK's retries off."""
        if settings.openai_api_key is None:
            raise ConfigError("OPENAI_API_KEY", "is required for the OpenAI model")
        client = openai.AsyncOpenAI(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url,
            # The SDK accepts a legacy httpx client at run time; its annotations name only httpx2's.
            http_client=cast(Any, http_client),
            max_retries=0,
            timeout=cast(Any, httpx.Timeout(settings.openai_timeout_seconds, connect=CONNECT_TIMEOUT)),
        )
        return cls(
            client,
            model=settings.openai_model,
            categories=catalog or settings.categories,
            max_retries=settings.openai_max_retries,
            max_completion_tokens=settings.openai_max_completion_tokens,
            context_max_tokens=settings.context_max_tokens,
            sleep=sleep,
            identity_key=settings.derived_secret("openai-safety-identifier"),
            canary=settings.prompt_canary(),
        )

    async def respond(self, message: ClaimedMessage, context: list[ContextMessage]) -> Triage:
        request = self._request()  # one list of categories for the whole call, even if they change meanwhile
        body = request.body(self._messages(message, context), self._safety_identifier(message.client_id))
        failure: openai.OpenAIError | None = None
        for attempt in range(self._attempts):
            if failure is not None:
                await self._sleep(self._delay(attempt - 1, failure))
            started = time.perf_counter()
            try:
                raw = await self._client.post(self._url, cast_to=bytes, content=body, options=_OPTIONS)
            except openai.OpenAIError as exc:
                self._log(message, _outcome(exc), _elapsed_ms(started))
                failure = _retryable(exc)
            else:
                return self._answer(message, _completion(raw), started, request.names)
        raise ModelUnavailable(
            f"model unavailable after {self._attempts} attempts (last: {_outcome(failure)})"
        ) from failure

    def _safety_identifier(self, client_id: str) -> str:
        """A keyed hash: OpenAI can tell customers apart without learning (or guessing) their ids."""
        return hmac.new(self._identity_key, client_id.encode(), hashlib.sha256).hexdigest()

    def _messages(self, message: ClaimedMessage, context: Sequence[ContextMessage]) -> list[ChatCompletionMessageParam]:
        """After the system prompt: the conversation so far, then every message of the burst as the customer sent it."""
        messages: list[ChatCompletionMessageParam] = [
            {"role": "assistant", "content": item.content}
            if item.role == "assistant"
            else {"role": "user", "content": item.content}
            for item in bound_context(context, message.text, self._context_max_tokens)
        ]
        messages.extend({"role": "user", "content": text} for text in message.contents)
        return messages

    def _delay(self, retry: int, failure: openai.OpenAIError) -> float:
        """The server's ``retry-after`` when it is sane (0 < s ≤ 60), else capped exponential backoff with jitter."""
        if isinstance(failure, openai.APIStatusError):
            retry_after = _retry_after(failure.response.headers)
            if retry_after is not None and 0 < retry_after <= MAX_RETRY_AFTER:
                return retry_after
        return exponential(INITIAL_BACKOFF, MAX_BACKOFF, retry) * (1 - 0.25 * self._jitter())

    def _answer(
        self, message: ClaimedMessage, response: ChatCompletion, started: float, categories: Sequence[str]
    ) -> Triage:
        usage = Usage(
            model=response.model,
            prompt_version=PROMPT_VERSION,
            prompt_tokens=response.usage.prompt_tokens if response.usage else 0,
            completion_tokens=response.usage.completion_tokens if response.usage else 0,
            latency_ms=_elapsed_ms(started),
        )
        try:
            classification, reply = parse_answer(_content(response), categories)
        except UnusableAnswer as exc:
            self._log(message, f"unusable {exc.message}", usage.latency_ms, usage)
            # The tokens were spent even though the answer is unusable.
            raise UnusableAnswer(exc.message, usage=usage) from None
        self._log(message, "ok", usage.latency_ms, usage)
        return Triage(classification=classification, reply=reply, usage=usage)

    def _log(self, message: ClaimedMessage, outcome: str, ms: int, usage: Usage | None = None) -> None:
        logger.info(
            "openai call message=%s model=%s outcome=%s prompt_tokens=%d completion_tokens=%d ms=%d",
            message.id,
            usage.model if usage else self._model,
            outcome,
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
            ms,
        )


def _dumps(value: object) -> bytes:
    """JSON as the SDK itself serializes a body: compact, UTF-8, no NaN."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _completion(raw: bytes) -> ChatCompletion:
    """The SDK's type for the answer. One it does not foresee (a new ``finish_reason``, say) is built the
    SDK's own way, without checks, as ``chat.completions.create`` would have returned it."""
    try:
        return ChatCompletion.model_validate_json(raw)
    except pydantic.ValidationError:
        return ChatCompletion.model_construct(**json.loads(raw))


def _content(response: ChatCompletion) -> str:
    if not response.choices:
        raise UnusableAnswer("no_choices")
    choice = response.choices[0]
    if choice.finish_reason == "length":
        raise UnusableAnswer("truncated")
    if choice.finish_reason == "content_filter":
        raise UnusableAnswer("content_filter")
    if choice.message.refusal:
        raise UnusableAnswer("refused")
    if not choice.message.content:
        raise UnusableAnswer("no_content")
    return choice.message.content


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from OpenAI's ``retry-after-ms``, else the standard ``retry-after``; None when absent or malformed."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            seconds = float(milliseconds) / 1000.0
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds):
            return seconds
    return parse_retry_after(headers.get("retry-after"), datetime.now(UTC))


def _retryable(exc: openai.OpenAIError) -> openai.OpenAIError:
    """Return ``exc`` when another attempt may succeed; otherwise raise its translation."""
    if isinstance(exc, openai.APIConnectionError):  # APITimeoutError included
        return exc
    if not isinstance(exc, openai.APIStatusError):
        raise ResponderError(f"openai: {type(exc).__name__}") from exc
    if exc.status_code == 429 and "insufficient_quota" in (exc.code, exc.type):
        raise ModelQuotaExceeded("insufficient_quota") from exc
    if exc.status_code in RETRYABLE_STATUSES or exc.status_code >= 500:
        return exc
    raise ResponderError(f"openai {exc.status_code}: {exc.code or exc.type or 'error'}") from exc


def _outcome(exc: openai.OpenAIError | None) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"status {exc.status_code}"
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection error"
    return "error"
