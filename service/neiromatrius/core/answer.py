"""The model's answer: one pydantic model is both the strict JSON schema sent to the model and the check of
what comes back. The schema constrains the model, but schema-valid output is not trusted output: every
field is checked again, and the reply is cleaned of control characters."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from typing import Any, get_args

from pydantic import ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from ..errors import UnusableAnswer
from .models import Classification, Sentiment, Urgency

SENTIMENTS: tuple[str, ...] = get_args(Sentiment)
URGENCIES: tuple[str, ...] = get_args(Urgency)
MAX_REPLY_CHARS = 4000
MAX_INTENT_CHARS = 64
# What Structured Outputs is given of each field's schema (the ranges are checked here, on the way back).
_SENT_KEYWORDS = ("type", "enum", "description")

# Control characters other than the newline, the bidi marks and overrides that can disguise a reply's text,
# and invisible characters that carry no meaning in a chat but can hide text from the reader: zero width
# space, word joiner and invisible operators, the BOM, and the tag characters of "ASCII smuggling".
# Zero width (non-)joiners stay: emoji sequences and several scripts need them.
_UNSAFE_CHARS = re.compile(
    r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
    r"\U000e0000-\U000e007f]"
)
_ISO_639_1 = re.compile(r"^[a-z]{2}$")


class Answer(Classification):
    """A classification and the reply to send; ``context={"categories": ...}`` names the allowed categories."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reply: str = Field(description="plain text")

    @field_validator("category", mode="before")
    @classmethod
    def _category(cls, value: object, info: ValidationInfo) -> str:
        return _choice("category", value, (info.context or {}).get("categories", ()))

    @field_validator("sentiment", mode="before")
    @classmethod
    def _sentiment(cls, value: object) -> str:
        return _choice("sentiment", value, SENTIMENTS)

    @field_validator("urgency", mode="before")
    @classmethod
    def _urgency(cls, value: object) -> str:
        return _choice("urgency", value, URGENCIES)

    @field_validator("intent", mode="before")
    @classmethod
    def _intent(cls, value: object) -> str:
        if not isinstance(value, str):
            raise _unusable(f"schema: intent {_short(value)} not a string")
        label = re.sub(r"\W+", "_", value.strip().lower()).strip("_")[:MAX_INTENT_CHARS]
        if not label:
            raise _unusable("schema: intent empty")
        return label

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: object) -> str:
        code = value.strip().lower().replace("_", "-").split("-")[0] if isinstance(value, str) else None
        if code is None or not _ISO_639_1.match(code):
            raise _unusable(f"schema: language {_short(value)} not ISO 639-1")
        return code

    @field_validator("confidence", mode="before")
    @classmethod
    def _confidence(cls, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _unusable(f"schema: confidence {_short(value)} not a number")
        if not 0 <= value <= 1:  # NaN fails this comparison too
            raise _unusable(f"schema: confidence {_short(value)} out of range")
        return float(value)

    @field_validator("needs_human", mode="before")
    @classmethod
    def _needs_human(cls, value: object) -> bool:
        if not isinstance(value, bool):
            raise _unusable(f"schema: needs_human {_short(value)} not a boolean")
        return value

    @field_validator("reply", mode="before")
    @classmethod
    def _reply(cls, value: object) -> str:
        if not isinstance(value, str):
            raise _unusable("schema: reply not a string")
        text = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\t", " "))
        text = _UNSAFE_CHARS.sub("", text).strip()
        if not text:
            raise _unusable("empty_reply")
        if len(text) > MAX_REPLY_CHARS:
            raise _unusable("reply_too_long")
        return text

    @property
    def classification(self) -> Classification:
        # Every field was checked above, against the same declarations: copied, not validated again.
        return Classification.model_construct(**{name: getattr(self, name) for name in _CLASSIFICATION_FIELDS})


_CLASSIFICATION_FIELDS = tuple(Classification.model_fields)


def response_schema(categories: Sequence[str]) -> dict[str, Any]:
    """The strict JSON schema for Structured Outputs: every field required, nothing else allowed."""
    fields = Answer.model_json_schema()["properties"]
    properties = {name: {key: field[key] for key in _SENT_KEYWORDS if key in field} for name, field in fields.items()}
    properties["category"]["enum"] = list(categories)
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def parse_answer(text: str, categories: Sequence[str]) -> tuple[Classification, str]:
    """Validate the model's JSON answer; raise ``UnusableAnswer`` with a short reason if it may not be used."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise UnusableAnswer("invalid_json") from None
    if not isinstance(data, dict):
        raise UnusableAnswer("schema: not an object")
    try:
        answer = Answer.model_validate(data, context={"categories": tuple(categories)})
    except ValidationError as exc:
        raise UnusableAnswer(_reason(exc.errors())) from None
    return answer.classification, answer.reply


def _reason(errors: list[ErrorDetails]) -> str:
    """The one reason to report: a missing field first (in the fields' order), then an unexpected one."""
    missing = [error["loc"][0] for error in errors if error["type"] == "missing"]
    if missing:
        return f"schema: missing {missing[0]!r}"
    extra = sorted(str(error["loc"][0]) for error in errors if error["type"] == "extra_forbidden")
    if extra:
        return f"schema: unexpected {_short(extra[0])}"
    first = errors[0]
    return str(first["ctx"]["reason"]) if first["type"] == "unusable" else f"schema: {first['loc'][0]} {first['msg']}"


def _unusable(reason: str) -> PydanticCustomError:
    return PydanticCustomError("unusable", "{reason}", {"reason": reason})


def _short(value: object) -> str:
    """A model-supplied value for an error message: quoted and cut short, never the whole text."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _choice(name: str, value: object, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise _unusable(f"schema: {name} {_short(value)} not allowed")
    return value
