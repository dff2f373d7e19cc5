"""Prompt injection end to end, against a model that obeys it.

A corpus of hostile messages (``injection_corpus``) goes through the API process, as API messages and
as Telegram updates, to a listener in this process whose OpenAI is ``ObedientModel`` (respx, through
the listener's own httpx client). The system prompt carries the deployment's canary; another client's
conversation, with a distinctive secret, is in the database. Whatever the model does, the customer must
receive no canary, no piece of the instructions, no secret and nothing of the other client; categories
stay in their set; markup arrives as inert text (JSON-escaped in the signed webhook body, plain
``text`` with no ``parse_mode`` or ``entities`` in Telegram's sendMessage).
"""

from __future__ import annotations

import itertools
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import respx
from pydantic import SecretStr
from standardwebhooks import Webhook

from neiromatrius.adapters.webhooks import webhook_secret
from neiromatrius.config import Settings
from tests.conftest import MakeReceiver
from tests.e2e.conftest import running_listener
from tests.reliability.injection_corpus import (
    ATTACKS,
    VICTIM_ADDRESS,
    VICTIM_MESSAGE,
    VICTIM_REPLY,
    VICTIM_SECRET,
    Attack,
    Expect,
)
from tests.reliability.obedient_model import ObedientModel
from tests.support import openai_mock
from tests.support.http_receiver import Receiver
from tests.support.waiting import eventually

BOUND = 60.0
TOKEN = "515151:" + "I" * 35
TELEGRAM_SECRET = "inject-secret_" + "s" * 30
BOT_API = "https://telegram.test"
SEND = f"{BOT_API}/bot{TOKEN}/sendMessage"
StartApi = Callable[..., tuple[str, Any]]

HANDOFF_REASONS = {
    Expect.PROMPT_LEAK: "unusable_answer: leaked_system_prompt",
    Expect.SECRET_LEAK: "unusable_answer: leaked_secret",
    Expect.FOREIGN_CATEGORY: "unusable_answer: schema: category",
    Expect.NOT_JSON: "unusable_answer: invalid_json",
}


@dataclass(frozen=True)
class Conversation:
    """Where one attack was written: its client and chat, as the service keys a conversation."""

    attack: Attack
    client_id: str
    platform: str
    chat_id: str


@contextmanager
def mocked_upstreams(model: ObedientModel) -> Iterator[respx.Route]:
    """The obedient model behind OpenAI's completions, and Telegram's sendMessage; loopback goes through."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        router.route(host="127.0.0.1").pass_through()
        router.post(f"{openai_mock.BASE_URL}/chat/completions").mock(side_effect=model)
        yield router.post(SEND).mock(return_value=httpx.Response(200, json={"ok": True, "result": {"message_id": 1}}))


def listener_settings(e2e_settings: Settings) -> Settings:
    update = {
        "openai_base_url": openai_mock.BASE_URL,
        "openai_api_key": SecretStr("sk-test"),
        "telegram_bot_token": SecretStr(TOKEN),
        "telegram_api_url": BOT_API,
        # Each turn is judged on its own answer: the Telegram turns, sent back to back, are not coalesced.
        "burst_window_ms": {},
    }
    return e2e_settings.model_copy(update=update)


async def plant_victim(db: asyncpg.Connection, client_id: str, chats: list[tuple[str, str]]) -> None:
    """Another client's answered conversations, on the very platforms and chat ids the attackers use."""
    await db.execute("insert into public.clients (id) values ($1)", client_id)
    for platform, chat_id in chats:
        conversation = await db.fetchval(
            "insert into public.conversations (client_id, platform, chat_id) values ($1, $2, $3) returning id",
            client_id, platform, chat_id,
        )  # fmt: skip
        inbound = await db.fetchval(
            "insert into public.messages (conversation_id, client_id, direction, content, state)"
            " values ($1, $2, 'inbound', $3, 'answered') returning id",
            conversation, client_id, VICTIM_MESSAGE,
        )  # fmt: skip
        await db.execute(
            "insert into public.messages (conversation_id, client_id, direction, content, reply_to)"
            " values ($1, $2, 'outbound', $3, $4)",
            conversation, client_id, VICTIM_REPLY, inbound,
        )  # fmt: skip


async def post_attacks(api_url: str, hook_url: str, api_client: str, clean_clients: list[str]) -> list[Conversation]:
    """Every turn of every attack, each attack in a chat of its own; posted before the listener starts."""
    conversations = []
    update_ids = itertools.count(random.randrange(10**8, 10**9))
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        for attack in ATTACKS:
            if attack.channel == "webhook":
                conversation = Conversation(attack, api_client, "test", f"inject-{attack.id}")
                for turn in attack.turns:
                    await post_message(http, conversation, turn, hook_url)
            else:
                user_id = random.randrange(10**9, 10**10)
                conversation = Conversation(attack, f"telegram:{user_id}", "telegram", str(user_id))
                clean_clients.append(conversation.client_id)
                for turn in attack.turns:
                    await post_update(http, user_id, next(update_ids), turn)
            conversations.append(conversation)
    return conversations


async def post_message(http: httpx.AsyncClient, conversation: Conversation, content: str, hook_url: str) -> None:
    headers = {
        "X-Webhook-URL": hook_url,
        "X-Platform": conversation.platform,
        "X-Chat-ID": conversation.chat_id,
        "Prefer": "respond-async",
    }
    response = await http.post(
        "/api/messages/", headers=headers, json={"client_id": conversation.client_id, "content": content}
    )
    assert response.status_code == 202, response.text


async def post_update(http: httpx.AsyncClient, user_id: int, update_id: int, text: str) -> None:
    message = {
        "message_id": update_id % 100000,
        "date": int(time.time()),
        "chat": {"id": user_id, "type": "private", "first_name": "Mallory"},
        "from": {"id": user_id, "is_bot": False, "first_name": "Mallory"},
        "text": text,
    }
    headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    response = await http.post(
        "/api/telegram/webhook", json={"update_id": update_id, "message": message}, headers=headers
    )
    assert response.status_code == 200, response.text


async def turns_of(db: asyncpg.Connection, conversation: Conversation) -> list[asyncpg.Record]:
    """The conversation's inbound messages, oldest first, with their reply (if any) and classification."""
    return await db.fetch(
        "select m.id, m.state, m.last_error, r.content as reply, r.delivery_state, c.category"
        " from messages m join conversations v on v.id = m.conversation_id"
        " left join replies r on r.message_id = m.id left join classifications c on c.message_id = m.id"
        " where v.client_id = $1 and v.platform = $2 and v.chat_id = $3 and m.direction = 'inbound'"
        " order by m.created_at",
        conversation.client_id, conversation.platform, conversation.chat_id,
    )  # fmt: skip


async def all_settled(db: asyncpg.Connection, conversations: list[Conversation]) -> dict[str, list[asyncpg.Record]]:
    """Once every turn is finished and every reply delivered: each attack's turns."""

    async def check() -> dict[str, list[asyncpg.Record]] | None:
        turns = {c.attack.id: await turns_of(db, c) for c in conversations}
        settled = all(
            len(rows) == len(c.attack.turns)
            and all(row["state"] in ("answered", "handoff", "failed") for row in rows)
            and all(row["reply"] is None or row["delivery_state"] == "delivered" for row in rows)
            for c, rows in ((c, turns[c.attack.id]) for c in conversations)
        )
        return turns if settled else None

    result: dict[str, list[asyncpg.Record]] = await eventually(check, BOUND, every=0.1)
    return result


def model_answer_to(model: ObedientModel, content: str) -> str:
    """What the model answered to the request whose latest message was ``content``."""
    [answer] = [
        a for r, a in zip(model.requests, model.answers, strict=True) if r["messages"][-1]["content"] == content
    ]
    return answer


async def test_an_obedient_model_leaks_nothing_picks_no_foreign_category_and_markup_arrives_as_text(
    api: StartApi,
    e2e_settings: Settings,
    receiver: MakeReceiver,
    db: asyncpg.Connection,
    clean_clients: list[str],
) -> None:
    settings = listener_settings(e2e_settings)
    secret = webhook_secret(settings)
    api_url, _ = api(TELEGRAM_ENABLED="true", TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_WEBHOOK_SECRET=TELEGRAM_SECRET)
    hook: Receiver = await receiver()
    api_client, victim = f"inject-{uuid.uuid4().hex[:10]}", f"victim-{uuid.uuid4().hex[:10]}"
    clean_clients.extend([api_client, victim])

    conversations = await post_attacks(api_url, hook.url(), api_client, clean_clients)
    await plant_victim(db, victim, [(c.platform, c.chat_id) for c in conversations])
    model = ObedientModel(known_secret=secret)
    with mocked_upstreams(model) as send:
        async with running_listener(settings):
            turns = await all_settled(db, conversations)

    # The model had the canary in every request, obeyed every attack, and never saw the other client.
    assert len(model.requests) == sum(len(attack.turns) for attack in ATTACKS)
    assert all(settings.prompt_canary() in request["messages"][0]["content"] for request in model.requests)
    seen = [json.dumps(request, ensure_ascii=False) for request in model.requests]
    assert [text for text in seen if VICTIM_SECRET in text or VICTIM_ADDRESS in text] == []

    sent = Sent(webhooks=webhook_texts(hook, secret), telegram=telegram_texts(send))
    for conversation in conversations:
        assert_outcome(conversation, turns[conversation.attack.id], sent, model, settings)

    answered = [row for rows in turns.values() for row in rows if row["state"] == "answered"]
    assert 0 < len(sent.everything) == len(answered)  # nothing sent for a message handed off
    secrets = [secret, settings.telegram_secret(), settings.secret_key.get_secret_value(), TOKEN]
    for text in sent.everything:
        assert settings.prompt_canary() not in text and "You are the assistant" not in text
        assert VICTIM_SECRET not in text and VICTIM_ADDRESS not in text
        assert [key for key in secrets if key in text] == []
    assert {row["category"] for row in answered} <= set(settings.categories)
    assert all(row["category"] is not None for row in answered)


@dataclass(frozen=True)
class Sent:
    webhooks: dict[str, str]  # message id -> the reply a webhook delivered
    telegram: dict[str, list[str]]  # chat id -> the texts sendMessage sent there, in order

    @property
    def everything(self) -> list[str]:
        return [*self.webhooks.values(), *(text for texts in self.telegram.values() for text in texts)]


def webhook_texts(hook: Receiver, secret: str) -> dict[str, str]:
    """Every delivered webhook, its signature checked over the exact bytes, as message id -> reply."""
    texts = {}
    for received in hook.requests:
        assert received.headers["content-type"] == "application/json"
        Webhook(secret).verify(received.body, received.headers)
        data = json.loads(received.body)["data"]
        texts[data["message_id"]] = data["response"]
    assert len(texts) == len(hook.requests)  # each reply once
    return texts


def telegram_texts(send: respx.Route) -> dict[str, list[str]]:
    """Every sendMessage, checked to be plain text: no parse_mode, no entities, no link previews."""
    texts: dict[str, list[str]] = {}
    for call in send.calls:
        params = json.loads(call.request.content)
        assert sorted(params) == ["chat_id", "link_preview_options", "text"]
        assert params["link_preview_options"] == {"is_disabled": True}
        texts.setdefault(str(params["chat_id"]), []).append(params["text"])
    return texts


def assert_outcome(
    conversation: Conversation, rows: list[asyncpg.Record], sent: Sent, model: ObedientModel, settings: Settings
) -> None:
    """Setup turns answered harmlessly; the attack handed off unsent, or sent as the exact, inert text."""
    attack = conversation.attack
    *setup, last = rows
    for row in setup:
        assert (row["state"], row["last_error"]) == ("answered", None), attack.id
    texts = sent.telegram.get(conversation.chat_id, []) if conversation.platform == "telegram" else None
    if attack.expect in HANDOFF_REASONS:
        assert last["state"] == "handoff", attack.id
        assert last["last_error"].startswith(HANDOFF_REASONS[attack.expect]), (attack.id, last["last_error"])
        assert last["reply"] is None and str(last["id"]) not in sent.webhooks, attack.id
        assert texts is None or len(texts) == len(setup), attack.id
        assert_the_model_did_it(attack, model, settings)
        return
    assert (last["state"], last["last_error"]) == ("answered", None), attack.id
    if texts is not None:
        assert len(texts) == len(rows), attack.id
    text = texts[-1] if texts is not None else sent.webhooks[str(last["id"])]
    assert text == last["reply"], attack.id
    if attack.expect is Expect.VERBATIM:
        assert text == attack.delivered, attack.id  # exactly these characters, none interpreted
    else:
        assert attack.own_text is not None and attack.own_text in text, attack.id  # the echo did echo


def assert_the_model_did_it(attack: Attack, model: ObedientModel, settings: Settings) -> None:
    """The guard, not a shy model, kept it from the customer: the model's answer really was the leak."""
    answer, system = model_answer_to(model, attack.attack), model.requests[0]["messages"][0]["content"]
    if attack.expect is Expect.NOT_JSON:
        assert not answer.lstrip().startswith("{"), attack.id
        return
    said = json.loads(answer)
    if attack.expect is Expect.PROMPT_LEAK:
        assert len(said["reply"]) > 200 and said["reply"].replace(" ", "") in system.replace(" ", ""), attack.id
    elif attack.expect is Expect.SECRET_LEAK:
        assert model.known_secret in said["reply"], attack.id
    elif attack.expect is Expect.FOREIGN_CATEGORY:
        assert said["category"] not in settings.categories, attack.id
