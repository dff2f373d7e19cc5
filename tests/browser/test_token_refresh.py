"""The live channel outlives the access token it started with: supabase-js refreshes the session and hands
each new token to Realtime (SupabaseClient._handleTokenChanged → realtime.setAuth), so after the first
token has expired, changes still arrive without a reload and the banner stays away.

A stack of its own issues 35-second access tokens (GOTRUE_JWT_EXP); auth-js refreshes a session due to
expire within 90 s on each 30-second tick, so every token is replaced before it runs out. The Realtime
double stops a channel whose token has expired, so a console that kept the first token would go deaf.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from neiromatrius_devstack.process import DevstackProcess, free_port
from tests.browser.conftest import Browser, Console, ProxyThread, make_operator
from tests.conftest import Stack
from tests.e2e.conftest import ServiceProcess, service_env

pytestmark = [pytest.mark.local_only, pytest.mark.timeout(420)]

TOKEN_SECONDS = 35
SIGNED_OUT_WITHIN_MS = 200_000


@pytest.fixture(scope="module")
def short_tokens(built_console: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    work = tmp_path_factory.mktemp("refresh")
    process = DevstackProcess(work / "data", extra_env={"GOTRUE_JWT_EXP": str(TOKEN_SECONDS)})
    env = process.start()
    stack = Stack(env["SUPABASE_URL"], env["SUPABASE_ANON_KEY"], env["SUPABASE_SERVICE_ROLE_KEY"],
                  env["SUPABASE_JWT_SECRET"], env["DATABASE_URL"].replace("+asyncpg", "", 1), True)  # fmt: skip
    proxy = ProxyThread(int(stack.url.rsplit(":", 1)[1]))  # not cut here; the console goes straight to the stack
    browser: Browser | None = None
    console: ServiceProcess | None = None
    try:
        port = free_port()
        console = ServiceProcess("console", service_env(stack, FRONTEND_PORT=str(port)), work)
        console.wait_for_line("✓ Ready in")
        browser = Browser()
        yield Console(f"http://127.0.0.1:{port}", "", stack, proxy, make_operator(stack), browser, console, None)
    finally:
        if browser is not None:
            browser.close()
        if console is not None:
            console.stop()
        proxy.close()
        process.stop()


def access_token(cookies: list[dict[str, str]]) -> str | None:
    """The access token in @supabase/ssr's session cookie (``base64-`` + base64url JSON, maybe in chunks)."""
    parts = sorted((c for c in cookies if c["name"].startswith("sb-") and "-auth-token" in c["name"]),
                   key=lambda c: c["name"])  # fmt: skip
    if not parts:
        return None
    raw = "".join(c["value"] for c in parts).removeprefix("base64-")
    session: dict[str, Any] = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    token = session.get("access_token")
    return str(token) if token else None


def test_changes_keep_arriving_after_the_first_token_expired(short_tokens: Console) -> None:
    c, b = short_tokens, short_tokens.browser
    page = c.page()
    c.sign_in(page)
    c_live = '.banner-slot[data-connection="live"]'
    b("waitFor", page=page, selector=c_live, state="attached", timeout=15000)
    b("click", page=page, selector='[data-tab="bot"]')
    first = access_token(b("cookies", page=page))
    assert first is not None
    expires = jwt.decode(first, options={"verify_signature": False})["exp"]
    assert expires - time.time() <= TOKEN_SECONDS

    # The condition is the token's own expiry time; poll for the refreshed cookie with a bound.
    deadline = time.monotonic() + 3 * TOKEN_SECONDS + 30
    current = first
    while time.time() < expires + 2 or current == first:
        assert time.monotonic() < deadline, "the session was not refreshed before the first token expired"
        time.sleep(0.5)
        current = access_token(b("cookies", page=page)) or current
    assert jwt.decode(current, options={"verify_signature": False})["exp"] > time.time()

    chat = f"refresh-{uuid.uuid4().hex[:8]}"
    admin = {"apikey": c.stack.service_key, "Authorization": f"Bearer {c.stack.service_key}"}
    made = httpx.post(f"{c.stack.url}/rest/v1/rpc/intake_message", headers=admin, timeout=10,
                      json={"p_client_id": "refresh", "p_platform": "test", "p_chat_id": chat,
                            "p_content": "Где мой заказ?"})  # fmt: skip
    assert made.status_code == 200, made.text
    conversation = made.json()["conversation_id"]
    b("waitFor", page=page, selector=f'[data-conversation="{conversation}"]', timeout=2000)
    assert b("count", page=page, selector="[data-testid=live-down]") == 0
    b("close", page=page)


def test_a_session_ended_under_an_open_page_goes_to_sign_in_and_back_with_the_text_kept(short_tokens: Console) -> None:
    """Signed out everywhere (Auth's logout, scope global) while a conversation is open with half a reply:
    the next refresh fails, supabase-js reports SIGNED_OUT, the page goes to sign-in saying why, and after
    signing in again the person is back in the conversation with the text they typed."""
    c, b = short_tokens, short_tokens.browser
    admin = {"apikey": c.stack.service_key, "Authorization": f"Bearer {c.stack.service_key}"}
    made = httpx.post(f"{c.stack.url}/rest/v1/rpc/intake_message", headers=admin, timeout=10,
                      json={"p_client_id": "expiry", "p_platform": "test", "p_chat_id": f"exp-{uuid.uuid4().hex[:8]}",
                            "p_content": "Нужна помощь"})  # fmt: skip
    assert made.status_code == 200, made.text
    path = f"/conversations/{made.json()['conversation_id']}"
    page = c.page()
    c.sign_in(page, path)
    b("fill", page=page, selector="#composer", value="Сейчас проверю и вернусь")
    # A 35 s token is due within auth-js's margin at once: let that first refresh land (its cookie is the
    # condition), so the session is revoked later in its life, as in practice.
    signed_in = access_token(b("cookies", page=page))
    deadline = time.monotonic() + TOKEN_SECONDS
    token = signed_in
    while token == signed_in:
        assert time.monotonic() < deadline, "the session was never refreshed"
        time.sleep(0.2)
        token = access_token(b("cookies", page=page))
    ended = httpx.post(f"{c.stack.url}/auth/v1/logout", params={"scope": "global"}, timeout=10,
                       headers={"apikey": c.stack.anon_key, "Authorization": f"Bearer {token}"})  # fmt: skip
    assert ended.status_code == 204, ended.text
    # auth-js tries to refresh on its 30-second tick (the token is due within its 90-second margin). While
    # the access token is still valid a failure keeps the session and is cached for 60 s
    # (REFRESH_FAILURE_COOLDOWN_MS); the first real attempt after the token expired ends the session with
    # SIGNED_OUT (auth-js GoTrueClient._callRefreshToken). So: up to 30 + 60 + 30 s, plus the load here.
    b("waitForUrl", page=page, pattern=r"/login\?expired=1&next=", timeout=SIGNED_OUT_WITHIN_MS)
    b("waitFor", page=page, selector="p[role=status].notice")
    b("fill", page=page, selector="#email", value=c.operator.email)
    b("fill", page=page, selector="#password", value=c.operator.password)
    b("click", page=page, selector="button[type=submit]")
    b("waitForUrl", page=page, pattern=f"{path}$", timeout=15000)
    b("waitFor", page=page, selector="#composer")
    assert b("value", page=page, selector="#composer") == "Сейчас проверю и вернусь"
    b("close", page=page)
