"""supabase-py's auth client against /auth/v1 (conformance: also runs on a real Supabase)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from supabase_auth.errors import AuthApiError

from tests.conftest import Stack


@pytest.fixture
async def clients(stack: Stack) -> AsyncIterator[tuple[AsyncClient, AsyncClient]]:
    """(anon client, service-role client), sharing one HTTP pool, sessions in memory only."""
    async with httpx.AsyncClient(timeout=30) as http:
        options = {"httpx_client": http, "auto_refresh_token": False, "persist_session": False}
        anon = await acreate_client(stack.url, stack.anon_key, AsyncClientOptions(**options))
        admin = await acreate_client(stack.url, stack.service_key, AsyncClientOptions(**options))
        yield anon, admin


async def test_sign_in_refresh_update_and_sign_out(stack: Stack, clients: tuple[AsyncClient, AsyncClient]) -> None:
    anon, admin = clients
    email, password = f"py-{uuid.uuid4().hex[:10]}@example.com", f"pw-{uuid.uuid4().hex}"
    created = await admin.auth.admin.create_user({"email": email, "password": password, "email_confirm": True})
    assert created.user is not None
    try:
        signed_in = await anon.auth.sign_in_with_password({"email": email, "password": password})
        assert signed_in.session is not None and signed_in.user is not None
        assert signed_in.user.id == created.user.id
        first_refresh = signed_in.session.refresh_token

        me = await anon.auth.get_user()
        assert me is not None and me.user.email == email

        refreshed = await anon.auth.refresh_session()
        assert refreshed.session is not None
        assert refreshed.session.refresh_token != first_refresh
        # Within one second the new access token may equal the old one (same claims, no jti), as on GoTrue.
        assert (refreshed.session.expires_at or 0) >= (signed_in.session.expires_at or 0)

        new_password = f"pw2-{uuid.uuid4().hex}"
        updated = await anon.auth.update_user({"password": new_password})
        assert updated.user.id == created.user.id

        kept = refreshed.session.refresh_token
        await anon.auth.sign_out()
        assert await anon.auth.get_session() is None
        with pytest.raises(AuthApiError) as refused:
            await anon.auth.refresh_session(kept)
        assert refused.value.code == "refresh_token_not_found"

        with pytest.raises(AuthApiError) as old:
            await anon.auth.sign_in_with_password({"email": email, "password": password})
        assert (old.value.status, old.value.code) == (400, "invalid_credentials")
        again = await anon.auth.sign_in_with_password({"email": email, "password": new_password})
        assert again.session is not None
    finally:
        await admin.auth.admin.delete_user(created.user.id)


async def test_admin_client_lists_and_reads_users(clients: tuple[AsyncClient, AsyncClient]) -> None:
    _, admin = clients
    email = f"py-admin-{uuid.uuid4().hex[:10]}@example.com"
    created = await admin.auth.admin.create_user({"email": email, "password": "long enough", "email_confirm": True})
    try:
        page = await admin.auth.admin.list_users(page=1, per_page=1000)
        assert email in [user.email for user in page]
        fetched = await admin.auth.admin.get_user_by_id(created.user.id)
        assert fetched.user.email == email
        changed = await admin.auth.admin.update_user_by_id(created.user.id, {"user_metadata": {"name": "Grace"}})
        assert changed.user.user_metadata["name"] == "Grace"
    finally:
        await admin.auth.admin.delete_user(created.user.id)
    with pytest.raises(AuthApiError) as gone:
        await admin.auth.admin.get_user_by_id(created.user.id)
    assert (gone.value.status, gone.value.code) == (404, "user_not_found")
