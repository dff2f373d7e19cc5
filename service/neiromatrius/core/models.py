"""Plain domain models: what comes in, what is stored, what the model answers, what goes out."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class MessageState(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    ANSWERED = "answered"
    DRAFT = "draft"  # the bot's answer waits for an operator's approval
    HANDOFF = "handoff"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        """The bot's part is over: answered, waiting for a person (draft, handoff), or failed."""
        return self in (MessageState.ANSWERED, MessageState.DRAFT, MessageState.HANDOFF, MessageState.FAILED)


class Outcome(StrEnum):
    """What ``complete_message`` made of the model's answer; the conversation controls decide, in SQL."""

    SENT = "sent"  # delivered to the customer
    DRAFT = "draft"  # stored for an operator to approve, edit or discard
    HANDOFF = "handoff"  # a person takes over (the customer gets the handoff notice)
    DISCARDED = "discarded"  # an operator acted while the model answered: kept, never sent


class Model(BaseModel):
    model_config = ConfigDict(frozen=True)


# Where a reply is delivered: the intake header, and the SSRF guard's name for it in errors.
WEBHOOK_URL_HEADER = "X-Webhook-URL"
MAX_WEBHOOK_URL_CHARS = 2048


class IncomingMessage(Model):
    """A customer's message as accepted at the edge (already validated)."""

    client_id: str
    platform: str
    chat_id: str
    content: str
    webhook_url: str | None = None
    idempotency_key: str | None = None
    platform_message_id: str | None = None
    fingerprint: str | None = None  # a hash of the request, to tell a retry from a reused key
    payload: dict[str, Any] | None = None  # the platform's original message, when it carries more than text
    handoff_reason: str | None = None  # set: stored straight for a human (content the model cannot read)


class Intake(Model):
    """What the intake RPC answers: the stored message (new, or the one a retry refers to)."""

    id: str
    conversation_id: str
    state: MessageState
    created: bool
    conflict: bool = False  # the idempotency key was used before with a different request


Sentiment = Literal["positive", "neutral", "negative"]
Urgency = Literal["low", "normal", "high", "critical"]


# The model is asked for ``core.answer.Answer`` (this plus the reply), and the API's OpenAPI document
# shows this model's schema: one definition for both, so they cannot drift apart.
class Classification(Model):
    """How the message was read: what it is about, how it sounds, and whether a person must look."""

    category: str
    intent: str = Field(description="short English snake_case label")
    sentiment: Sentiment
    urgency: Urgency
    language: str = Field(description="ISO 639-1 code")
    confidence: float = Field(ge=0, le=1, description="0 to 1")
    needs_human: bool


class Usage(Model):
    model: str
    prompt_version: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int = 0


class Triage(Model):
    """One model call's result: the classification and the reply to send."""

    classification: Classification
    reply: str
    usage: Usage


class ContextMessage(Model):
    role: Literal["user", "assistant"]
    content: str


class BurstMessage(Model):
    id: str
    content: str
    created_at: datetime


class ClaimedMessage(Model):
    """An inbound message this worker holds a lease on, with the rest of its burst.

    ``burst`` holds every customer message claimed together with this one (itself first), oldest first:
    quick lines of one conversation are answered by one model call. Empty when claimed alone."""

    id: str
    conversation_id: str
    client_id: str
    platform: str
    chat_id: str
    content: str
    attempts: int
    created_at: datetime
    burst: tuple[BurstMessage, ...] = ()
    # The conversation before the burst, when the claim brought it (one round trip less); None: ask for it.
    context: tuple[ContextMessage, ...] | None = None
    more: bool = False  # another message was claimable beyond this claim's limit: claim again

    @property
    def contents(self) -> tuple[str, ...]:
        """What the customer wrote, one item per message, oldest first."""
        return tuple(item.content for item in self.burst) if self.burst else (self.content,)

    @property
    def text(self) -> str:
        """The burst as one text (rules and budgets that look at the whole of it)."""
        return "\n".join(self.contents)


class Category(Model):
    """A category the business offers the model (the ``categories`` table)."""

    name: str
    description: str = ""
    examples: tuple[str, ...] = ()


class MessageView(Model):
    """A message as the API shows it: state, and the classification and reply once they exist."""

    id: str
    conversation_id: str
    state: MessageState
    classification: Classification | None = None
    response: str | None = None
    model: str | None = None
    last_error: str | None = None


class DeliveryJob(Model):
    """A reply due for delivery, claimed with a lease."""

    reply_id: str
    message_id: str
    conversation_id: str
    client_id: str
    platform: str
    chat_id: str
    webhook_url: str | None
    content: str
    classification: Classification | None
    attempt: int  # 1 for the first attempt
    created_at: datetime


class Completion(Model):
    """The answer stored: its reply, what the controls made of it, and the messages it answers.

    ``delivery``: the reply to send, already leased to the completing worker when it asked for that."""

    reply_id: str
    outcome: Outcome
    message_ids: tuple[str, ...] = ()
    delivery: DeliveryJob | None = None


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # failed now; try again later
    FAILED = "failed"  # failed for good (attempts exhausted, blocked destination)
    STOPPED = "stopped"  # the receiver said 410 Gone


class DeliveryAttempt(Model):
    """One try at delivering a reply, as recorded in the delivery log."""

    outcome: DeliveryOutcome
    webhook_id: str
    url: str | None
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0
    retry_after: float | None = None  # the receiver's Retry-After, in seconds


class QueueStats(Model):
    """The unfinished inbound messages, as the database counts them."""

    pending: int
    processing: int
    oldest_pending_seconds: float
