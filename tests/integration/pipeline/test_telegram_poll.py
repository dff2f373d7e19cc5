"""``neiromatrius telegram``'s calls: long polling into the real store (the Bot API mocked with respx),
and the webhook registration's request."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import respx

from neiromatrius.adapters.supabase_store import SupabaseMessageStore
from neiromatrius.config import Settings
from neiromatrius.errors import InputError, PollingConflict
from neiromatrius.telegram.bot_api import TelegramBotApi
from neiromatrius.telegram.commands import Poller, set_webhook

TOKEN = "777:" + "P" * 35
BOT_API = "https://telegram.test"
METHOD = f"{BOT_API}/bot{TOKEN}"


@pytest.fixture
async def user(db: asyncpg.Connection) -> AsyncIterator[int]:
    user_id = random.randrange(10**9, 10**10)
    yield user_id
    await db.execute("delete from public.clients where id = $1", f"telegram:{user_id}")


def text_update(number: int, user: int, text: str) -> dict[str, Any]:
    chat = {"id": user, "type": "private"}
    return {"update_id": number, "message": {"message_id": number, "chat": chat, "from": {"id": user}, "text": text}}


def batch(*updates: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"ok": True, "result": list(updates)})


class Batches:
    """getUpdates' answers in turn; ``served`` is set once the last one was asked for again."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.served = asyncio.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if len(self.answers) > 1:
            return self.answers.pop(0)
        self.served.set()
        return self.answers[0]


async def poll_until_served(poller: Poller, batches: Batches) -> None:
    task = asyncio.create_task(poller.run())
    try:
        await asyncio.wait_for(batches.served.wait(), 10)
    finally:
        poller.stop()
        await asyncio.wait_for(task, 10)


async def test_polling_stores_each_update_once_and_acknowledges_only_what_it_stored(
    resources: Any, store: SupabaseMessageStore, db: asyncpg.Connection, user: int
) -> None:
    first, second = text_update(9001, user, "Привет"), text_update(9002, user, "Где заказ?")
    with respx.mock(assert_all_mocked=True) as router:
        router.route(host="127.0.0.1").pass_through()
        updates = router.post(f"{METHOD}/getUpdates")
        # The second batch repeats an update, as Telegram does after a lost acknowledgement.
        updates.side_effect = Batches(batch(first), batch(first, second), batch())
        poller = Poller(TelegramBotApi(resources.http, TOKEN, BOT_API), store, max_chars=4000, wait=0)
        await poll_until_served(poller, updates.side_effect)

    offsets = [json.loads(call.request.content).get("offset") for call in updates.calls[:3]]
    assert offsets == [None, 9002, 9003]
    rows = await db.fetch(
        "select content, platform_message_id, state from messages where client_id = $1 order by created_at",
        f"telegram:{user}",
    )
    assert [(r["content"], r["platform_message_id"], r["state"]) for r in rows] == [
        ("Привет", "9001", "pending"),
        ("Где заказ?", "9002", "pending"),
    ]
    assert poller.stored == 2


async def test_polling_with_a_webhook_registered_stops_with_a_conflict(
    resources: Any, store: SupabaseMessageStore
) -> None:
    conflict = {"ok": False, "error_code": 409, "description": "Conflict: can't use getUpdates while webhook is active"}
    with respx.mock(assert_all_mocked=True) as router:
        router.post(f"{METHOD}/getUpdates").mock(return_value=httpx.Response(409, json=conflict))
        poller = Poller(TelegramBotApi(resources.http, TOKEN, BOT_API), store, max_chars=4000, wait=0)
        with pytest.raises(PollingConflict) as caught:
            await asyncio.wait_for(poller.run(), 10)
    assert TOKEN not in str(caught.value)


async def test_set_webhook_registers_the_url_with_the_secret_token(resources: Any, settings: Settings) -> None:
    with respx.mock(assert_all_mocked=True) as router:
        route = router.post(f"{METHOD}/setWebhook").mock(return_value=httpx.Response(200, json={"ok": True}))
        api = TelegramBotApi(resources.http, TOKEN, BOT_API)
        await set_webhook(api, settings, "https://api.example.com/api/telegram/webhook")
        with pytest.raises(InputError):
            await set_webhook(api, settings, "http://api.example.com/api/telegram/webhook")
    sent = json.loads(route.calls.last.request.content)
    assert route.call_count == 1
    assert sent["url"] == "https://api.example.com/api/telegram/webhook"
    assert sent["secret_token"] == settings.telegram_secret()
    assert sent["allowed_updates"] == ["message"]
