"""The conversation controls in Chromium: an operator takes a conversation over and replies (delivered to the
webhook receiver signed, once, however often the button is clicked), the bot stays quiet afterwards, a draft
approved after an edit delivers the edited text, an empty or oversize reply gets a clear message; an admin
edits the categories (a malformed edit changes nothing), an agent does not see them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from neiromatrius.adapters.webhooks import webhook_secret
from neiromatrius.config import Settings
from tests.browser.conftest import Console, make_operator
from tests.e2e.conftest import SECRET_KEY
from tests.support.http_receiver import Received
from tests.support.waiting import blocking_eventually

pytestmark = [pytest.mark.local_only, pytest.mark.timeout(300)]

SETTLE = 20.0  # the listener's answer and a delivery, on a loaded machine
UI_MS = 15000


def deliveries(c: Console, text: str) -> list[Received]:
    assert c.receiver is not None
    return [r for r in list(c.receiver.requests) if json.loads(r.body)["data"]["response"] == text]


def delivered(c: Console, text: str) -> Received:
    found: list[Received] = blocking_eventually(lambda: deliveries(c, text), SETTLE, every=0.1)
    return found[0]


def open_conversation(c: Console, conversation_id: str) -> int:
    page = c.page()
    c.sign_in(page, f"/conversations/{conversation_id}")
    c.browser("waitFor", page=page, selector='.banner-slot[data-connection="live"]', state="attached", timeout=UI_MS)
    return page


def secret() -> Webhook:
    settings = Settings(_env_file=None, supabase_url="http://x", supabase_service_role_key="k", secret_key=SECRET_KEY)  # type: ignore[call-arg]
    return Webhook(webhook_secret(settings))


def test_take_over_and_reply_reaches_the_webhook_signed_once_and_the_bot_stays_quiet(console_rig: Console) -> None:
    c, b = console_rig, console_rig.browser
    chat = f"takeover-{uuid.uuid4().hex[:8]}"
    first = c.send(chat, "Hello! What are your prices?", c.hook)
    page = open_conversation(c, first["conversation_id"])
    b("waitFor", page=page, selector='[data-direction="outbound"] [data-delivery="delivered"]', timeout=UI_MS)
    hint = "[data-testid=composer-hint]"
    assert b("texts", page=page, selector=hint) == ["The bot is answering this conversation: your reply pauses it."]

    b("click", page=page, selector='[data-action="take_over"]')
    b("waitFor", page=page, selector='[data-testid=controls][data-mode="off"]', timeout=UI_MS)
    assert b("attr", page=page, selector="[data-testid=controls]", name="data-assignee") == c.operator.user_id
    text = f"Operator here: our prices are on the site ({uuid.uuid4().hex[:6]})."
    b("fill", page=page, selector="#composer", value=text)
    b("dblclick", page=page, selector='[data-action="send"]')  # a double click sends once
    b("waitFor", page=page, selector="[data-testid=composer-sent]", timeout=UI_MS)

    request = delivered(c, text)
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert secret().verify(request.body, headers)["data"]["response"] == text
    b("waitFor", page=page, selector=f'[data-direction="outbound"]:has-text("{text}") [data-delivery="delivered"]',
      timeout=UI_MS)  # fmt: skip
    (who,) = b("texts", page=page, selector=f'[data-direction="outbound"]:has-text("{text}") .who strong')
    assert who == "Operator"

    # The customer writes again: nobody but the operator answers now.
    later = c.send(chat, "And the delivery time?", c.hook)
    sentinel = c.send(f"sentinel-{uuid.uuid4().hex[:8]}", "Hello! What are your prices?", c.hook)
    blocking_eventually(lambda: httpx.get(f"{c.api_url}/api/messages/{sentinel['id']}").json()["state"] == "answered",
                        SETTLE, every=0.2)  # fmt: skip
    assert httpx.get(f"{c.api_url}/api/messages/{later['id']}").json()["state"] == "pending"
    assert len(deliveries(c, text)) == 1

    # In the inbox: the conversation is Mine, needs a person (the customer wrote last), one unread message.
    row = f'[data-conversation="{first["conversation_id"]}"]'
    b("goto", page=page, url="/inbox")
    b("waitFor", page=page, selector=row, timeout=UI_MS)  # the default tab: Needs a person
    assert b("texts", page=page, selector=f"{row} [data-testid=unread]") == ["1"]
    b("click", page=page, selector='[data-tab="mine"]')
    b("waitFor", page=page, selector=row, timeout=UI_MS)
    b("click", page=page, selector='[data-tab="bot"]')
    b("waitFor", page=page, selector=row, state="detached", timeout=UI_MS)
    b("close", page=page)


def test_a_draft_approved_after_an_edit_delivers_the_edited_text(console_rig: Console) -> None:
    c, b = console_rig, console_rig.browser
    chat = f"draft-{uuid.uuid4().hex[:8]}"
    first = c.send(chat, "Hello! What are your prices?", c.hook)
    conversation = first["conversation_id"]
    page = open_conversation(c, conversation)
    b("waitFor", page=page, selector='[data-direction="outbound"] [data-delivery="delivered"]', timeout=UI_MS)
    b("selectOption", page=page, selector='[data-action="set_bot_mode"]', value="draft")
    b("waitFor", page=page, selector='[data-testid=controls][data-mode="draft"]', timeout=UI_MS)

    asked = c.send(chat, "What are your opening hours?", c.hook)
    b("waitFor", page=page, selector="[data-draft] textarea", timeout=SETTLE * 1000)
    c.screenshot(page, "conversation-draft")
    assert httpx.get(f"{c.api_url}/api/messages/{asked['id']}").json()["state"] == "draft"
    reached = b("focusOrder", page=page, presses=45)  # every control of the page by keyboard, in reading order
    reached = reached[: reached.index(None)]  # one round: Tab wraps back to the top after the last control
    wanted = ["Take over", "bot_mode", "assignee", "Resolve", "Approve and send", "Discard", "composer", "Send reply",
              "note", "Add note"]  # fmt: skip
    assert [name for name in reached if name in wanted] == wanted, "\n".join(map(str, reached))
    edited = f"We are open 9 to 18, Monday to Friday ({uuid.uuid4().hex[:6]})."
    b("fill", page=page, selector="[data-draft] textarea", value=edited)
    b("dblclick", page=page, selector='[data-draft] [data-action="approve"]')
    b("waitFor", page=page, selector="[data-draft]", state="detached", timeout=UI_MS)

    request = delivered(c, edited)
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert secret().verify(request.body, headers)["data"]["response"] == edited
    assert len(deliveries(c, edited)) == 1
    assert httpx.get(f"{c.api_url}/api/messages/{asked['id']}").json()["response"] == edited
    b("close", page=page)


def test_approving_a_draft_another_operator_just_answered_is_refused_in_words_and_nothing_is_sent(
    console_rig: Console,
) -> None:
    c, b = console_rig, console_rig.browser
    chat = f"conflict-{uuid.uuid4().hex[:8]}"
    first = c.send(chat, "Hello! What are your prices?", c.hook)
    conversation = first["conversation_id"]
    page = c.page(holdable=True)
    c.sign_in(page, f"/conversations/{conversation}")
    b("waitFor", page=page, selector='.banner-slot[data-connection="live"]', state="attached", timeout=UI_MS)
    b("waitFor", page=page, selector='[data-direction="outbound"] [data-delivery="delivered"]', timeout=UI_MS)
    b("selectOption", page=page, selector='[data-action="set_bot_mode"]', value="draft")
    b("waitFor", page=page, selector='[data-testid=controls][data-mode="draft"]', timeout=UI_MS)
    c.send(chat, "What are your opening hours?", c.hook)
    b("waitFor", page=page, selector="[data-draft] textarea", timeout=SETTLE * 1000)

    # Another operator, in their own session, takes the conversation over and answers it (the draft is
    # superseded) while this page's live channel lags behind: it still offers the draft.
    other = make_operator(c.stack, "agent")
    credentials = {"email": other.email, "password": other.password}
    token = httpx.post(f"{c.stack.url}/auth/v1/token", params={"grant_type": "password"}, timeout=10,
                       headers={"apikey": c.stack.anon_key}, json=credentials)  # fmt: skip
    assert token.status_code == 200, token.text
    as_other = {"apikey": c.stack.anon_key, "Authorization": f"Bearer {token.json()['access_token']}"}
    answer = f"The other operator answers ({uuid.uuid4().hex[:6]})"
    b("holdRealtime", page=page, hold=True)
    try:
        for name, body in (("take_over", {"p_conversation_id": conversation}),
                           ("send_reply", {"p_conversation_id": conversation, "p_content": answer})):  # fmt: skip
            response = httpx.post(f"{c.stack.url}/rest/v1/rpc/{name}", headers=as_other, json=body, timeout=10)
            assert response.status_code == 200, response.text
        b("click", page=page, selector='[data-draft] [data-action="approve"]')
        b("waitFor", page=page, selector="[data-draft] [role=alert]", timeout=UI_MS)
        (refusal,) = b("texts", page=page, selector="[data-draft] [role=alert]")
    finally:
        b("holdRealtime", page=page, hold=False)
    assert refusal.startswith("Not done: the conversation changed meanwhile"), refusal
    b("waitFor", page=page, selector="[data-draft]", state="detached", timeout=UI_MS)  # caught up: no draft
    b("waitFor", page=page, selector='[data-testid=controls][data-mode="off"]', timeout=UI_MS)
    assert b("attr", page=page, selector="[data-testid=controls]", name="data-assignee") == other.user_id

    delivered(c, answer)  # the other operator's reply went out; the draft never did
    assert c.receiver is not None
    texts = [json.loads(r.body)["data"]["response"] for r in list(c.receiver.requests)]
    assert texts.count(answer) == 1
    draft_texts = [r["content"] for r in replies_of(c, conversation) if r["status"] == "discarded"]
    assert draft_texts and not set(draft_texts) & set(texts)
    b("close", page=page)


def replies_of(c: Console, conversation: str) -> list[dict[str, Any]]:
    headers = {"apikey": c.stack.service_key, "Authorization": f"Bearer {c.stack.service_key}"}
    url = f"{c.stack.url}/rest/v1/replies?conversation_id=eq.{conversation}&select=content,status,kind"
    rows: list[dict[str, Any]] = httpx.get(url, headers=headers, timeout=10).json()
    return rows


def test_an_empty_or_oversize_reply_is_refused_with_a_clear_message_and_nothing_sent(console_rig: Console) -> None:
    c, b = console_rig, console_rig.browser
    sent = c.send(f"bad-{uuid.uuid4().hex[:8]}", "Hello! What are your prices?", c.hook)
    page = open_conversation(c, sent["conversation_id"])
    b("click", page=page, selector='[data-action="send"]')
    assert b("texts", page=page, selector="[data-testid=composer-error]") == ["Write something first."]
    b("fill", page=page, selector="#composer", value="x" * 4001)
    b("click", page=page, selector='[data-action="send"]')
    assert b("texts", page=page, selector="[data-testid=composer-error]") == ["Too long: at most 4000 characters."]

    assert "x" * 4001 == b("value", page=page, selector="#composer")  # nothing typed is lost
    b("close", page=page)


def category(c: Console, name: str) -> dict[str, Any]:
    headers = {"apikey": c.stack.service_key, "Authorization": f"Bearer {c.stack.service_key}"}
    response = httpx.get(f"{c.stack.url}/rest/v1/categories?name=eq.{name}", headers=headers, timeout=10)
    [row] = response.json()
    return dict(row)


def test_an_admin_edits_a_category_and_a_malformed_edit_changes_nothing(console_rig: Console) -> None:
    c, b = console_rig, console_rig.browser
    page = c.page()
    c.sign_in(page, "/categories")
    assert b("count", page=page, selector='nav a[href="/categories"]') == 1
    form = '[data-category="feedback"]'
    before = category(c, "feedback")
    description = f"Praise or criticism of the service ({uuid.uuid4().hex[:6]})"
    try:
        b("fill", page=page, selector=f'{form} textarea[id$="-description"]', value=description)
        b("click", page=page, selector=f'{form} [data-action="save"]')
        b("waitFor", page=page, selector=f"{form} [data-testid=category-saved]", timeout=UI_MS)
        assert category(c, "feedback")["description"] == description

        b("fill", page=page, selector=f'{form} [data-field="threshold"]', value="2")
        b("click", page=page, selector=f'{form} [data-action="save"]')
        assert b("texts", page=page, selector=f"{form} [data-testid=category-error]") == [
            "The minimum confidence must be a number from 0 to 1."
        ]
        # A name taken already: the table's unique constraint refuses it, and the form says so.
        b("fill", page=page, selector='[data-form="new"] input[id$="-name"]', value="feedback")
        b("click", page=page, selector='[data-form="new"] [data-action="save"]')
        b("waitFor", page=page, selector='[data-form="new"] [data-testid=category-error]', timeout=UI_MS)
        assert b("texts", page=page, selector='[data-form="new"] [data-testid=category-error]') == [
            "A category with this name exists already."
        ]
        after = category(c, "feedback")
        assert (after["description"], after["min_confidence"]) == (description, before["min_confidence"])
        assert [v for v in b("axe", page=page) if v["impact"] in ("serious", "critical")] == []
    finally:
        headers = {"apikey": c.stack.service_key, "Authorization": f"Bearer {c.stack.service_key}"}
        httpx.patch(f"{c.stack.url}/rest/v1/categories?name=eq.feedback", headers=headers, timeout=10,
                    json={"description": before["description"]})  # fmt: skip
    b("close", page=page)


def test_an_agent_sees_no_categories_page(console_rig: Console) -> None:
    c, b = console_rig, console_rig.browser
    agent = make_operator(c.stack, "agent")
    page = c.page()
    assert b("goto", page=page, url="/categories").startswith(f"{c.url}/login?next=")
    b("fill", page=page, selector="#email", value=agent.email)
    b("fill", page=page, selector="#password", value=agent.password)
    b("click", page=page, selector="button[type=submit]")
    b("waitForUrl", page=page, pattern="/categories$", timeout=UI_MS)
    assert b("texts", page=page, selector="[data-testid=admins-only]") == [
        "Only admins may see and change the categories."
    ]
    assert b("count", page=page, selector='nav a[href="/categories"]') == 0
    assert b("count", page=page, selector="[data-form]") == 0
    b("close", page=page)


def test_the_dashboard_shows_the_messages_of_the_day_at_a_glance(console_rig: Console) -> None:
    c, b = console_rig, console_rig.browser
    sent = c.send(f"dash-{uuid.uuid4().hex[:8]}", "Hello! What are your prices?", c.hook)
    blocking_eventually(lambda: httpx.get(f"{c.api_url}/api/messages/{sent['id']}").json()["state"] == "answered",
                        SETTLE, every=0.2)  # fmt: skip
    page = c.page()
    c.sign_in(page, "/dashboard")
    assert b("count", page=page, selector='nav a[href="/dashboard"]') == 1
    (messages,) = b("texts", page=page, selector='[data-kpi="messages"] dd')
    assert int(messages) >= 1
    (pricing,) = b("texts", page=page, selector='[data-chart="by-category"] [data-bar="pricing"] .bar-value')
    assert int(pricing) >= 1
    assert b("count", page=page, selector='[data-chart="by-outcome"] [data-bar="answered by the bot"]') == 1
    assert b("count", page=page, selector="[data-testid=first-response] tbody tr") >= 1
    assert [v for v in b("axe", page=page) if v["impact"] in ("serious", "critical")] == []
    c.screenshot(page, "dashboard")
    b("close", page=page)
