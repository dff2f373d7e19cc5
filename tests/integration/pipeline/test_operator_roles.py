"""Operator roles over the Data API: who reads the pipeline's rows and who manages operators (RLS).

Tokens are GoTrue-shaped (``Stack.user_token``); the auth users behind them are made with SQL, so these
tests need no Auth server and run unchanged against a real Supabase.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import asyncpg
import httpx
import pytest

from neiromatrius.adapters.supabase_store import SupabaseMessageStore
from neiromatrius.core.models import IncomingMessage
from tests.conftest import Stack
from tests.support.operators import Operators

PIPELINE_TABLES = ("conversations", "messages", "classifications", "replies")
RETURN = {"Prefer": "return=representation"}


@pytest.fixture
async def conversation(store: SupabaseMessageStore, incoming: Callable[..., IncomingMessage]) -> str:
    return (await store.intake(incoming())).conversation_id


@pytest.fixture
def as_user(stack: Stack) -> Iterator[Callable[[str], httpx.Client]]:
    """The Data API as the signed-in user ``sub`` (a fresh access token each time)."""
    clients: list[httpx.Client] = []

    def make(sub: str) -> httpx.Client:
        headers = {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.user_token(sub=sub)}"}
        client = httpx.Client(base_url=f"{stack.url}/rest/v1", headers=headers, timeout=10)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def seen(client: httpx.Client, conversation_id: str) -> dict[str, int]:
    counts = {}
    for table in PIPELINE_TABLES:
        column = "id" if table == "conversations" else "conversation_id"
        response = client.get(f"/{table}", params={column: f"eq.{conversation_id}", "select": "id"})
        assert response.status_code == 200, response.text
        counts[table] = len(response.json())
    return counts


def operator_ids(client: httpx.Client, *user_ids: str) -> set[str]:
    response = client.get("/operators", params={"user_id": f"in.({','.join(user_ids)})", "select": "user_id"})
    assert response.status_code == 200, response.text
    return {row["user_id"] for row in response.json()}


def own_row(client: httpx.Client) -> list[dict[str, object]]:
    response = client.get("/operators", params={"select": "active,role"})
    assert response.status_code == 200, response.text
    rows: list[dict[str, object]] = response.json()
    return rows


def anonymous_call(stack: Stack, path: str) -> httpx.Response:
    with httpx.Client(base_url=f"{stack.url}/rest/v1", headers={"apikey": stack.anon_key}, timeout=10) as anon:
        return anon.post(path)


async def test_agents_and_admins_read_conversations_a_signed_in_stranger_reads_nothing(
    operators: Operators, as_user: Callable[[str], httpx.Client], conversation: str
) -> None:
    agent, admin = await operators.make("agent"), await operators.make("admin")
    stranger = await operators.user()
    expected = {"conversations": 1, "messages": 1, "classifications": 0, "replies": 0}
    assert seen(as_user(agent.user_id), conversation) == expected
    assert seen(as_user(admin.user_id), conversation) == expected
    assert seen(as_user(stranger), conversation) == dict.fromkeys(PIPELINE_TABLES, 0)
    assert operator_ids(as_user(stranger), agent.user_id, admin.user_id, stranger) == set()


async def test_an_agent_sees_only_their_own_operators_row_an_admin_sees_everyone(
    operators: Operators, as_user: Callable[[str], httpx.Client]
) -> None:
    agent, other, admin = await operators.make("agent"), await operators.make("agent"), await operators.make("admin")
    everyone = (agent.user_id, other.user_id, admin.user_id)
    assert operator_ids(as_user(agent.user_id), *everyone) == {agent.user_id}
    assert operator_ids(as_user(admin.user_id), *everyone) == set(everyone)


async def test_an_agent_cannot_add_change_or_remove_operators_nor_promote_themselves(
    operators: Operators, as_user: Callable[[str], httpx.Client], db: asyncpg.Connection
) -> None:
    agent, other = await operators.make("agent"), await operators.make("agent")
    newcomer = await operators.user()
    client = as_user(agent.user_id)
    before = await db.fetch("select * from public.operators where user_id = any($1::uuid[]) order by user_id",
                            [agent.user_id, other.user_id])  # fmt: skip

    added = client.post("/operators", json={"user_id": newcomer, "role": "admin"})
    promoted = client.patch(
        "/operators", params={"user_id": f"eq.{agent.user_id}"}, json={"role": "admin"}, headers=RETURN
    )
    deactivated = client.patch(
        "/operators", params={"user_id": f"eq.{other.user_id}"}, json={"active": False}, headers=RETURN
    )
    removed = client.delete("/operators", params={"user_id": f"eq.{other.user_id}"}, headers=RETURN)

    assert (added.status_code, added.json()["code"]) == (403, "42501")
    assert [(r.status_code, r.json()) for r in (promoted, deactivated, removed)] == [(200, [])] * 3  # RLS: no rows
    after = await db.fetch("select * from public.operators where user_id = any($1::uuid[]) order by user_id",
                           [agent.user_id, other.user_id])  # fmt: skip
    assert after == before
    assert await db.fetchval("select count(*) from public.operators where user_id = $1", newcomer) == 0


async def test_an_admin_adds_changes_and_removes_operators(
    operators: Operators, as_user: Callable[[str], httpx.Client], db: asyncpg.Connection
) -> None:
    admin = await operators.make("admin")
    newcomer = await operators.user()
    client = as_user(admin.user_id)

    added = client.post("/operators", json={"user_id": newcomer, "display_name": "New"}, headers=RETURN)
    assert added.status_code == 201, added.text
    [row] = added.json()
    assert (row["role"], row["active"], row["display_name"]) == ("agent", True, "New")

    changed = client.patch("/operators", params={"user_id": f"eq.{newcomer}"}, json={"role": "admin", "active": False},
                           headers=RETURN)  # fmt: skip
    [row_after] = changed.json()
    assert (row_after["role"], row_after["active"]) == ("admin", False)
    assert row_after["updated_at"] > row["updated_at"]

    removed = client.delete("/operators", params={"user_id": f"eq.{newcomer}"}, headers=RETURN)
    assert [r["user_id"] for r in removed.json()] == [newcomer]
    assert await db.fetchval("select count(*) from public.operators where user_id = $1", newcomer) == 0


async def test_roles_other_than_admin_and_agent_are_refused_by_name(
    operators: Operators, as_user: Callable[[str], httpx.Client]
) -> None:
    admin = await operators.make("admin")
    newcomer = await operators.user()
    response = as_user(admin.user_id).post("/operators", json={"user_id": newcomer, "role": "owner"})
    assert response.status_code == 400
    assert response.json()["code"] == "23514" and "operators_role_check" in response.json()["message"]


async def test_an_operator_needs_an_auth_user_and_goes_with_it(
    operators: Operators, as_user: Callable[[str], httpx.Client], db: asyncpg.Connection
) -> None:
    admin = await operators.make("admin")
    unknown = "00000000-0000-4000-8000-00000000dead"
    response = as_user(admin.user_id).post("/operators", json={"user_id": unknown})
    assert (response.status_code, response.json()["code"]) == (409, "23503")

    agent = await operators.make("agent")
    await db.execute("delete from auth.users where id = $1", agent.user_id)
    assert await db.fetchval("select count(*) from public.operators where user_id = $1", agent.user_id) == 0


async def test_a_deactivated_operator_loses_access_at_once_with_the_same_token(
    operators: Operators, stack: Stack, conversation: str
) -> None:
    agent = await operators.make("agent")
    headers = {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.user_token(sub=agent.user_id)}"}
    with httpx.Client(base_url=f"{stack.url}/rest/v1", headers=headers, timeout=10) as client:
        assert seen(client, conversation)["messages"] == 1
        await operators.set_active(agent.user_id, False)
        assert seen(client, conversation) == dict.fromkeys(PIPELINE_TABLES, 0)
        # They still see their own row, so a console can say why the inbox is empty.
        assert own_row(client) == [{"active": False, "role": "agent"}]
        await operators.set_active(agent.user_id, True)
        assert seen(client, conversation)["messages"] == 1


async def test_a_deactivated_admin_can_no_longer_manage_operators(
    operators: Operators, as_user: Callable[[str], httpx.Client]
) -> None:
    admin, agent = await operators.make("admin"), await operators.make("agent")
    await operators.set_active(admin.user_id, False)
    client = as_user(admin.user_id)
    assert operator_ids(client, admin.user_id, agent.user_id) == {admin.user_id}
    changed = client.patch("/operators", params={"user_id": f"eq.{agent.user_id}"}, json={"active": False},
                           headers=RETURN)  # fmt: skip
    assert changed.json() == []


async def test_is_operator_and_is_admin_answer_about_the_caller_only(
    operators: Operators, as_user: Callable[[str], httpx.Client], stack: Stack
) -> None:
    agent, admin = await operators.make("agent"), await operators.make("admin")
    stranger = await operators.user()
    answers = {
        name: (as_user(user).post("/rpc/is_operator").json(), as_user(user).post("/rpc/is_admin").json())
        for name, user in (("agent", agent.user_id), ("admin", admin.user_id), ("stranger", stranger))
    }
    assert answers == {"agent": (True, False), "admin": (True, True), "stranger": (False, False)}
    refused = anonymous_call(stack, "/rpc/is_admin")
    assert (refused.status_code, refused.json()["code"]) == (401, "42501")
