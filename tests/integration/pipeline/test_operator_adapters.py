"""The operator adapters against Auth's admin API and PostgREST: paging, and GoTrue's refusals translated."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from supabase import AsyncClient

from neiromatrius import composition
from neiromatrius.adapters.supabase_operators import PAGE, SupabaseAuthAdmin, SupabaseOperatorDirectory
from neiromatrius.core.operators import Role
from neiromatrius.errors import AlreadyExists, InputError
from tests.support.operators import NIL_UUID


@pytest.fixture
def supabase(resources: composition.Resources) -> AsyncClient:
    return resources.supabase


@pytest.fixture
async def made_emails(db: asyncpg.Connection) -> AsyncIterator[list[str]]:
    made: list[str] = []
    yield made
    await db.execute("delete from auth.users where email = any($1::text[])", made)


async def test_find_user_reads_past_the_first_page(
    supabase: AsyncClient, db: asyncpg.Connection, made_emails: list[str]
) -> None:
    batch = uuid.uuid4().hex[:8]
    emails = [f"page-{batch}-{n}@test.neiromatrius.local" for n in range(PAGE + 5)]
    made_emails.extend(emails)
    # Oldest first: GoTrue lists newest first, so the first of these is on the last page.
    await db.executemany(
        "insert into auth.users (instance_id, id, aud, role, email, created_at, updated_at) values"
        f" ('{NIL_UUID}', gen_random_uuid(), 'authenticated', 'authenticated', $1, now() - make_interval(secs => $2),"
        " now())",
        [(email, len(emails) - n) for n, email in enumerate(emails)],
    )
    found = await SupabaseAuthAdmin(supabase).find_user(emails[0].upper())
    assert found is not None and found.email == emails[0]


async def test_gotrues_refusals_become_errors_naming_the_field(supabase: AsyncClient, made_emails: list[str]) -> None:
    auth = SupabaseAuthAdmin(supabase)
    email = f"refused-{uuid.uuid4().hex[:8]}@test.neiromatrius.local"
    made_emails.append(email)
    with pytest.raises(InputError) as too_long:  # admin creation checks no strength, but bcrypt's limit
        await auth.create_user(email, "x" * 73)
    assert too_long.value.field == "password"
    with pytest.raises(InputError) as malformed:
        await auth.create_user("not an email", "long-enough-password")
    assert malformed.value.field == "email"

    user = await auth.create_user(email, "long-enough-password")
    with pytest.raises(AlreadyExists):
        await auth.create_user(email, "another-password")
    directory = SupabaseOperatorDirectory(supabase)
    row = await directory.add(user.id, Role.AGENT, None)
    assert (row.role, row.active) == (Role.AGENT, True)
    assert (await directory.set_active(user.id, False)).active is False
    await auth.delete_user(user.id)
    assert await directory.get(user.id) is None  # the row went with the account
