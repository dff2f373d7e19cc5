# ruff: noqa: RUF001
"""The operator console in Chromium: sign in, the live inbox, the thread, cuts of the live connection,
a draft surviving an expired session, languages, keyboard and axe checks, sign out."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from tests.browser.conftest import Console

pytestmark = [pytest.mark.local_only, pytest.mark.timeout(300)]

LIVE_BOUND_MS = 2000  # the acceptance bound: a new message shows without a reload within 2 s
SETTLE_MS = 15000  # the listener's answer and classification, on a loaded machine
RECONNECT_MS = 30000  # realtime-js retries after 1, 2, 5, then every 10 s


def row(conversation_id: str) -> str:
    return f'[data-conversation="{conversation_id}"]'


def live(c: Console, page: int) -> None:
    c.browser("waitFor", page=page, selector='.banner-slot[data-connection="live"]', state="attached", timeout=15000)


def test_sign_in_then_a_new_message_appears_live_with_its_classification(console_rig: Console) -> None:
    c, b = console_rig, console_rig.browser
    page = c.page()
    c.sign_in(page)
    live(c, page)
    b("click", page=page, selector='[data-tab="bot"]')
    chat = f"live-{uuid.uuid4().hex[:8]}"
    sent = c.send(chat, "Здравствуйте! Где мой заказ 12345?", c.hook)
    b("waitFor", page=page, selector=row(sent["conversation_id"]), timeout=LIVE_BOUND_MS)
    classified = f"{row(sent['conversation_id'])} [data-field=category]"
    b("waitFor", page=page, selector=classified, timeout=SETTLE_MS)
    assert b("texts", page=page, selector=classified) == ["order_status"]
    assert b("texts", page=page, selector=f"{row(sent['conversation_id'])} .who") == [f"{chat} · test"]
    assert b("count", page=page, selector=row(sent["conversation_id"])) == 1
    c.screenshot(page, "inbox")
    assert b("errors", page=page) == []
    b("close", page=page)


def test_a_handed_off_message_shows_in_needs_a_person(console_rig: Console) -> None:
    c, b = console_rig, console_rig.browser
    page = c.page()
    c.sign_in(page)
    live(c, page)  # the default tab is Needs a person
    sent = c.send(f"handoff-{uuid.uuid4().hex[:8]}", "Позовите, пожалуйста, живого оператора", c.hook)
    b("waitFor", page=page, selector=f'{row(sent["conversation_id"])}[data-state="handoff"]', timeout=SETTLE_MS)
    assert b("attr", page=page, selector='[data-tab="needs_person"]', name="aria-selected") == "true"
    b("click", page=page, selector='[data-tab="bot"]')
    b("waitFor", page=page, selector=row(sent["conversation_id"]), state="detached", timeout=2000)
    b("close", page=page)


def test_the_thread_shows_classifications_models_and_deliveries(console_rig: Console) -> None:
    c, b = console_rig, console_rig.browser
    sent = c.send(f"thread-{uuid.uuid4().hex[:8]}", "Hello! What are your prices?", c.hook)  # answered, not handed off
    page = c.page()
    c.sign_in(page, f"/conversations/{sent['conversation_id']}")
    live(c, page)
    inbound = f'[data-message="{sent["id"]}"]'
    b("waitFor", page=page, selector=f"{inbound} [data-field=category]", timeout=SETTLE_MS)
    assert b("texts", page=page, selector=f"{inbound} [data-field=language]") == ["en"]
    b("waitFor", page=page, selector='[data-direction="outbound"] [data-delivery="delivered"]', timeout=SETTLE_MS)
    (who,) = b("texts", page=page, selector='[data-direction="outbound"] .who strong')
    assert who.startswith("Bot (offline-rules")
    (delivery,) = b("texts", page=page, selector='[data-direction="outbound"] [data-testid=delivery]')
    assert delivery == "delivered · 1 attempt(s)"
    c.screenshot(page, "conversation")
    b("close", page=page)


def test_a_cut_live_connection_shows_the_banner_then_what_arrived_meanwhile_once(console_rig: Console) -> None:
    c, b = console_rig, console_rig.browser
    page = c.page()
    c.sign_in(page)
    live(c, page)
    b("click", page=page, selector='[data-tab="bot"]')
    c.proxy.cut()
    try:
        b("waitFor", page=page, selector="[data-testid=live-down]", timeout=10000)
        c.screenshot(page, "inbox-connection-down")
        meanwhile = [c.send(f"cut-{uuid.uuid4().hex[:8]}", f"Где мой заказ {n}?", c.hook) for n in range(2)]
    finally:
        c.proxy.restore()
    for sent in meanwhile:
        b("waitFor", page=page, selector=row(sent["conversation_id"]), timeout=RECONNECT_MS)
    b("waitFor", page=page, selector="[data-testid=live-down]", state="detached", timeout=RECONNECT_MS)
    for sent in meanwhile:
        assert b("count", page=page, selector=row(sent["conversation_id"])) == 1
    # Live again: the next message arrives by itself, once.
    after = c.send(f"after-{uuid.uuid4().hex[:8]}", "Где мой заказ 3?", c.hook)
    b("waitFor", page=page, selector=row(after["conversation_id"]), timeout=LIVE_BOUND_MS + 3000)
    assert b("count", page=page, selector=row(after["conversation_id"])) == 1
    b("close", page=page)


def test_what_was_typed_survives_an_expired_session(console_rig: Console) -> None:
    c, b = console_rig, console_rig.browser
    sent = c.send(f"draft-{uuid.uuid4().hex[:8]}", "Нужна помощь с оплатой", c.hook)
    path = f"/conversations/{sent['conversation_id']}"
    page = c.page()
    c.sign_in(page, path)
    b("fill", page=page, selector="#composer", value="Добрый день! Проверяю ваш счёт")
    b("clearCookies", page=page)  # the session is gone, as when it expires
    b("reload", page=page)
    b("waitForUrl", page=page, pattern=r"/login\?next=", timeout=10000)
    b("fill", page=page, selector="#email", value=c.operator.email)
    b("fill", page=page, selector="#password", value=c.operator.password)
    b("click", page=page, selector="button[type=submit]")
    b("waitForUrl", page=page, pattern=f"{path}$", timeout=15000)
    b("waitFor", page=page, selector="#composer")
    assert b("value", page=page, selector="#composer") == "Добрый день! Проверяю ваш счёт"
    b("close", page=page)


def test_russian_by_accept_language_and_a_switch_to_english(console_rig: Console) -> None:
    c, b = console_rig, console_rig.browser
    page = c.page(locale="ru-RU")
    b("goto", page=page, url="/login")
    assert b("texts", page=page, selector="h1") == ["Вход"]
    b("click", page=page, selector='.locale button[value="en"]')
    b("waitFor", page=page, selector="h1:text('Sign in')")
    b("close", page=page)


def test_main_pages_pass_axe_and_every_control_is_reachable_by_keyboard(console_rig: Console) -> None:
    c, b = console_rig, console_rig.browser
    sent = c.send(f"axe-{uuid.uuid4().hex[:8]}", "Hello, where is my order?", c.hook)
    page = c.page()
    b("goto", page=page, url="/login")
    pages = {"login": "/login"}
    assert _serious(b("axe", page=page)) == [], "login"
    c.sign_in(page)
    live(c, page)
    reached = b("focusOrder", page=page, presses=25)
    for control in ("needs_person", "bot", "mine", "resolved", "platform", "category", "urgency", "language"):
        assert control in reached, (control, reached)
    pages.update(inbox="/inbox", conversation=f"/conversations/{sent['conversation_id']}", status="/status")
    for name, path in pages.items():
        if name == "login":
            continue
        b("goto", page=page, url=path)
        b("waitFor", page=page, selector="main")
        assert _serious(b("axe", page=page)) == [], name
    c.screenshot(page, "status")
    (health,) = b("texts", page=page, selector="[data-testid=backend-health]")
    assert health == "healthy"
    b("close", page=page)


def test_sign_out_ends_the_session(console_rig: Console) -> None:
    c, b = console_rig, console_rig.browser
    page = c.page()
    c.sign_in(page)
    b("click", page=page, selector="header form button[type=submit]:text('Sign out')")
    b("waitForUrl", page=page, pattern=r"/login$", timeout=10000)
    b("goto", page=page, url="/inbox")
    assert "/login?next=" in b("url", page=page)
    b("close", page=page)


def _serious(violations: list[dict[str, object]]) -> list[dict[str, object]]:
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def test_the_status_page_sends_the_checklists_test_message_through_next_public_api_url(console_rig: Console) -> None:
    c, b = console_rig, console_rig.browser
    page = c.page()
    c.sign_in(page, "/status")
    b("fill", page=page, selector="#tm-chat", value=f"status-{uuid.uuid4().hex[:8]}")
    b("fill", page=page, selector="#tm-hook", value=c.hook)
    b("click", page=page, selector="form[aria-labelledby=test-message-title] button[type=submit]")
    b("waitFor", page=page, selector="[data-testid=test-message-result]", timeout=SETTLE_MS + 15000)
    (answer,) = b("texts", page=page, selector="[data-testid=test-message-result]")
    body = json.loads(answer)
    assert body["state"] == "answered" and body["classification"]["category"] == "greeting"
    b("close", page=page)


def test_check_sees_the_console_healthy_and_reaching_the_api(console_rig: Console) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "neiromatrius", "check", "--console-url", console_rig.url],
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines() == [
        "✅ Console /health answers status ok, backend ok (BACKEND_API_URL reaches the API)",
        "✅ Console sign-in the sign-in page renders",
    ]
