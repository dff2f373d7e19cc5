"""Telegram end to end: updates posted to the API process, a listener in this process answering them
through a mocked OpenAI and delivering through a mocked Bot API (respx), rows in the local stack."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import httpx
import pytest
import respx
from pydantic import SecretStr

from neiromatrius.config import Settings
from tests.e2e.conftest import running_listener
from tests.support import openai_mock
from tests.support.waiting import eventually

BOUND = 20.0
TOKEN = "424242:" + "T" * 35
SECRET = "tg-secret_" + "s" * 30
BOT_API = "https://telegram.test"
SEND = f"{BOT_API}/bot{TOKEN}/sendMessage"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
StartApi = Callable[..., tuple[str, Any]]


def telegram_env() -> dict[str, str]:
    return {"TELEGRAM_ENABLED": "true", "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET}


def listener_settings(e2e_settings: Settings) -> Settings:
    update = {
        "openai_base_url": openai_mock.BASE_URL,
        "openai_api_key": SecretStr("sk-test"),
        "telegram_bot_token": SecretStr(TOKEN),
        "telegram_api_url": BOT_API,
    }
    return e2e_settings.model_copy(update=update)


@contextmanager
def mocked_upstreams() -> Iterator[tuple[respx.Route, respx.Route]]:
    """OpenAI's completions and Telegram's sendMessage mocked; the stack and the API go through."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        router.route(host="127.0.0.1").pass_through()
        yield router.post(f"{openai_mock.BASE_URL}/chat/completions"), router.post(SEND)


class Customer:
    """A Telegram user writing to the bot; their client id is cleaned up after the test."""

    def __init__(self, clean_clients: list[str]) -> None:
        self.user_id = random.randrange(10**9, 10**10)
        self.chat_id = self.user_id
        clean_clients.append(self.client_id)

    @property
    def client_id(self) -> str:
        return f"telegram:{self.user_id}"

    def update(self, update_id: int, **message: Any) -> dict[str, Any]:
        body = {
            "message_id": update_id % 1000,
            "date": int(time.time()),
            "chat": {"id": self.chat_id, "type": "private", "first_name": "Анна"},
            "from": {"id": self.user_id, "is_bot": False, "first_name": "Анна"},
        }
        return {"update_id": update_id, "message": body | (message or {"text": "Где мой заказ 4411?"})}


@pytest.fixture
def customer(clean_clients: list[str]) -> Customer:
    return Customer(clean_clients)


async def rows_of(db: asyncpg.Connection, client_id: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "select id, state, content, platform_message_id, payload, last_error from messages"
        " where client_id = $1 and direction = 'inbound'",
        client_id,
    )


async def delivered_reply(db: asyncpg.Connection, client_id: str) -> asyncpg.Record:
    async def check() -> asyncpg.Record | None:
        return await db.fetchrow(
            "select r.* from replies r join messages m on m.id = r.message_id"
            " where m.client_id = $1 and r.delivery_state = 'delivered'",
            client_id,
        )

    result: asyncpg.Record = await eventually(check, BOUND)
    return result


async def test_one_update_posted_five_times_in_sequence_and_at_once_is_one_message_one_call_one_send(
    api: StartApi, e2e_settings: Settings, db: asyncpg.Connection, customer: Customer
) -> None:
    api_url, _ = api(**telegram_env())
    hook = f"{api_url}/api/telegram/webhook"
    update = customer.update(880001)
    async with httpx.AsyncClient(timeout=30, headers={SECRET_HEADER: SECRET}) as http:
        sequential = [await http.post(hook, json=update) for _ in range(5)]
        concurrent = await asyncio.gather(*(http.post(hook, json=update) for _ in range(5)))
    assert [r.status_code for r in [*sequential, *concurrent]] == [200] * 10
    assert all(r.json() == {"ok": True} for r in [*sequential, *concurrent])
    [row] = await rows_of(db, customer.client_id)
    assert (row["state"], row["platform_message_id"]) == ("pending", "880001")

    with mocked_upstreams() as (completions, send):
        completions.mock(return_value=openai_mock.answered())
        send.mock(return_value=httpx.Response(200, json={"ok": True, "result": {"message_id": 5}}))
        async with running_listener(listener_settings(e2e_settings)):
            reply = await delivered_reply(db, customer.client_id)

    assert completions.call_count == 1
    assert send.call_count == 1
    sent = json.loads(send.calls.last.request.content)
    assert sent["chat_id"] == customer.chat_id
    assert sent["text"] == openai_mock.answer()["reply"] == reply["content"]
    assert "parse_mode" not in sent
    [row] = await rows_of(db, customer.client_id)
    assert row["state"] == "answered"


@pytest.mark.parametrize(
    "secret", [None, "wrong", SECRET + "x", SECRET[:-1]], ids=["missing", "wrong", "longer", "shorter"]
)
async def test_a_wrong_or_missing_secret_is_401_and_nothing_is_written(
    secret: str | None, api: StartApi, db: asyncpg.Connection, customer: Customer
) -> None:
    api_url, _ = api(**telegram_env())
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{api_url}/api/telegram/webhook", json=customer.update(880002), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.json()["error"]["field"] == SECRET_HEADER
    assert await rows_of(db, customer.client_id) == []


async def test_the_secret_derived_from_secret_key_is_accepted(
    api: StartApi, db: asyncpg.Connection, customer: Customer, e2e_settings: Settings
) -> None:
    env = telegram_env()
    del env["TELEGRAM_WEBHOOK_SECRET"]
    api_url, _ = api(**env)
    derived = e2e_settings.telegram_secret()  # the same SECRET_KEY as the API process
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{api_url}/api/telegram/webhook", json=customer.update(880003), headers={SECRET_HEADER: derived}
        )
    assert response.status_code == 200
    assert len(await rows_of(db, customer.client_id)) == 1


async def test_a_photo_without_caption_is_kept_for_a_human_and_never_reaches_the_model(
    api: StartApi, e2e_settings: Settings, db: asyncpg.Connection, customer: Customer
) -> None:
    api_url, _ = api(**telegram_env())
    update = customer.update(880004, photo=[{"file_id": "AgADphoto", "width": 90, "height": 90}])
    async with httpx.AsyncClient(timeout=30, headers={SECRET_HEADER: SECRET}) as http:
        response = await http.post(f"{api_url}/api/telegram/webhook", json=update)
    assert response.status_code == 200
    [row] = await rows_of(db, customer.client_id)
    assert (row["state"], row["content"], row["last_error"]) == ("handoff", "[photo]", "unsupported content: photo")
    assert json.loads(row["payload"])["photo"][0]["file_id"] == "AgADphoto"

    # A text after it in the same chat is answered: the photo neither reached the model nor blocked the chat.
    with mocked_upstreams() as (completions, send):
        completions.mock(return_value=openai_mock.answered())
        send.mock(return_value=httpx.Response(200, json={"ok": True, "result": {"message_id": 7}}))
        async with running_listener(listener_settings(e2e_settings)):
            async with httpx.AsyncClient(timeout=30, headers={SECRET_HEADER: SECRET}) as http:
                await http.post(f"{api_url}/api/telegram/webhook", json=customer.update(880006))
            await delivered_reply(db, customer.client_id)
    assert (completions.call_count, send.call_count) == (1, 1)
    # The model was asked about the text; the photo is only history to it, by its placeholder.
    asked = json.loads(completions.calls.last.request.content)["messages"][-1]["content"]
    assert "Где мой заказ 4411?" in asked and "[photo]" not in asked
    assert await db.fetchval("select count(*) from replies where message_id = $1", row["id"]) == 0


async def test_a_429_from_the_bot_api_is_waited_out_and_the_reply_sent_after_it(
    api: StartApi, e2e_settings: Settings, db: asyncpg.Connection, customer: Customer
) -> None:
    api_url, _ = api(**telegram_env())
    sent_at: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent_at.append(time.monotonic())
        if len(sent_at) == 1:
            body = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                    "parameters": {"retry_after": 1}}  # fmt: skip
            return httpx.Response(429, json=body)
        return httpx.Response(200, json={"ok": True, "result": {"message_id": 6}})

    with mocked_upstreams() as (completions, send):
        completions.mock(return_value=openai_mock.answered())
        send.mock(side_effect=answer)
        async with running_listener(listener_settings(e2e_settings)):
            async with httpx.AsyncClient(timeout=30, headers={SECRET_HEADER: SECRET}) as http:
                response = await http.post(f"{api_url}/api/telegram/webhook", json=customer.update(880005))
            assert response.status_code == 200
            reply = await delivered_reply(db, customer.client_id)

    assert send.call_count == 2
    assert sent_at[1] - sent_at[0] >= 1.0  # Telegram's retry_after was honoured, not cut short
    attempts = await db.fetch("select outcome from delivery_attempts where reply_id = $1", reply["id"])
    assert [a["outcome"] for a in attempts] == ["delivered"]


async def test_without_telegram_enabled_the_webhook_does_not_exist(api: StartApi) -> None:
    api_url, _ = api()
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{api_url}/api/telegram/webhook", json={"update_id": 1})
    assert response.status_code == 404
