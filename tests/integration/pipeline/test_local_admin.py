"""The local admin ``make run`` creates: through Auth's admin API and PostgREST, once, then reused."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from neiromatrius.config import Settings
from neiromatrius.local_admin import CREDENTIALS_FILE, LOCAL_ADMIN_EMAIL, credentials, ensure_local_admin

pytestmark = pytest.mark.local_only  # it makes a fixed admin account: not for someone's real project


@pytest.fixture
async def no_local_admin(db: asyncpg.Connection) -> AsyncIterator[None]:
    await db.execute("delete from auth.users where email = $1", LOCAL_ADMIN_EMAIL)
    yield
    await db.execute("delete from auth.users where email = $1", LOCAL_ADMIN_EMAIL)


def test_credentials_are_written_once_private_and_then_reused(tmp_path: Path) -> None:
    first = credentials(tmp_path / "data")
    path = tmp_path / "data" / CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.email == LOCAL_ADMIN_EMAIL and len(first.password) >= 20
    assert credentials(tmp_path / "data") == first


async def test_the_first_start_creates_an_active_admin_and_later_starts_reuse_it(
    settings: Settings, tmp_path: Path, db: asyncpg.Connection, no_local_admin: None
) -> None:
    first = await ensure_local_admin(settings, tmp_path)
    again = await ensure_local_admin(settings, tmp_path)

    assert again == first
    rows = await db.fetch(
        "select o.role, o.active, u.encrypted_password is not null as has_password from public.operators o"
        " join auth.users u on u.id = o.user_id where u.email = $1",
        LOCAL_ADMIN_EMAIL,
    )
    assert [dict(row) for row in rows] == [{"role": "admin", "active": True, "has_password": True}]


async def test_an_account_left_without_its_operators_row_is_completed(
    settings: Settings, tmp_path: Path, db: asyncpg.Connection, no_local_admin: None
) -> None:
    await ensure_local_admin(settings, tmp_path)
    await db.execute(
        "delete from public.operators where user_id = (select id from auth.users where email = $1)", LOCAL_ADMIN_EMAIL
    )
    await ensure_local_admin(settings, tmp_path)
    role = await db.fetchval(
        "select o.role from public.operators o join auth.users u on u.id = o.user_id where u.email = $1",
        LOCAL_ADMIN_EMAIL,
    )
    assert role == "admin"
