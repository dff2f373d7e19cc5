"""Row-level security through the REST API: ``rest_notes`` lets each user see and write only their rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from postgrest.exceptions import APIError
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from tests.conftest import Stack

ClientFactory = Callable[[str | None], Awaitable[AsyncClient]]


@pytest.fixture
async def client_for(stack: Stack) -> AsyncIterator[ClientFactory]:
    """``client_for(None)`` is anon, ``client_for("service")`` the service role, else a user's sub."""
    async with httpx.AsyncClient(timeout=30) as http:

        async def factory(who: str | None) -> AsyncClient:
            options = AsyncClientOptions(httpx_client=http)
            key = stack.anon_key
            if who == "service":
                key = stack.service_key
            elif who is not None:
                options.headers["Authorization"] = f"Bearer {stack.user_token(who)}"
            return await acreate_client(stack.url, key, options)

        yield factory


async def _seed(service: AsyncClient, owners: list[str], mark: str) -> None:
    await (
        service.table("rest_notes").insert([{"owner": owner, "body": f"{mark}:{owner}"} for owner in owners]).execute()
    )


async def test_anon_reads_nothing_and_cannot_write(client_for: ClientFactory) -> None:
    mark, alice = str(uuid.uuid4()), str(uuid.uuid4())
    await _seed(await client_for("service"), [alice], mark)
    anon = await client_for(None)
    seen = await anon.table("rest_notes").select("*").like("body", f"{mark}%").execute()
    assert seen.data == []
    with pytest.raises(APIError) as refused:
        await anon.table("rest_notes").insert({"owner": alice, "body": "sneaky"}).execute()
    assert refused.value.code == "42501"


async def test_each_user_sees_and_changes_only_their_rows(client_for: ClientFactory) -> None:
    mark, alice, bob = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    await _seed(await client_for("service"), [alice, alice, bob], mark)
    as_alice = await client_for(alice)
    mine = await as_alice.table("rest_notes").select("owner,body").like("body", f"{mark}%").execute()
    assert [row["owner"] for row in mine.data] == [alice, alice]

    created = await as_alice.table("rest_notes").insert({"body": f"{mark}:default-owner"}).execute()
    assert created.data[0]["owner"] == alice  # the column default reads auth.uid() from the JWT claims

    with pytest.raises(APIError) as refused:
        await as_alice.table("rest_notes").insert({"owner": bob, "body": f"{mark}:forged"}).execute()
    assert refused.value.code == "42501"

    touched = await as_alice.table("rest_notes").update({"body": "hijacked"}).eq("owner", bob).execute()
    assert touched.data == []
    removed = await as_alice.table("rest_notes").delete().eq("owner", bob).execute()
    assert removed.data == []
    as_bob = await client_for(bob)
    theirs = await as_bob.table("rest_notes").select("body").like("body", f"{mark}%").execute()
    assert theirs.data == [{"body": f"{mark}:{bob}"}]


async def test_service_role_bypasses_rls(client_for: ClientFactory) -> None:
    mark, alice, bob = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    service = await client_for("service")
    await _seed(service, [alice, bob], mark)
    everything = await service.table("rest_notes").select("owner", count="exact").like("body", f"{mark}%").execute()
    assert everything.count == 2
    assert {row["owner"] for row in everything.data} == {alice, bob}
