"""Who may see what: RLS, grants and function privileges of the pipeline schema, through the Data API."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import httpx
import pytest

from neiromatrius.adapters.supabase_store import SupabaseMessageStore
from neiromatrius.core.models import Classification, IncomingMessage, MessageState, Triage, Usage
from tests.conftest import Stack
from tests.support.operators import Operators

TABLES = (
    "clients", "conversations", "messages", "classifications", "replies", "delivery_attempts", "operators",
    "intake_rate_buckets",
)  # fmt: skip
OPERATOR_TABLES = ("conversations", "messages", "classifications", "replies")
UID = "00000000-0000-4000-8000-000000000000"
# Every function with arguments it would accept, so the refusal is about privileges, not about lookup.
FUNCTIONS: dict[str, dict[str, object]] = {
    "health_check": {},
    "intake_message": {"p_client_id": "x", "p_platform": "test", "p_chat_id": "x", "p_content": "x"},
    "get_message": {"p_id": UID},
    "claim_messages": {"p_worker": "intruder"},
    "extend_lease": {"p_message_id": UID, "p_worker": "w", "p_lease_seconds": 1},
    "complete_message": {
        "p_message_id": UID, "p_worker": "w", "p_state": "answered", "p_reply": "x", "p_classification": {},
        "p_usage": {},
    },
    "finish_message": {"p_message_id": UID, "p_worker": "w", "p_state": "failed", "p_error": "x"},
    "release_message": {"p_message_id": UID, "p_worker": "w"},
    "claim_deliveries": {"p_worker": "intruder"},
    "record_delivery": {
        "p_reply_id": UID, "p_worker": "w", "p_outcome": "failed", "p_webhook_id": "x", "p_status_code": None,
        "p_error": None, "p_duration_ms": 0, "p_next_attempt_at": None,
    },
    "record_deliveries": {"p_items": []},
    "complete_messages": {"p_items": []},
    "take_intake_tokens": {
        "p_client_id": "x", "p_platform": "test", "p_chat_id": "x", "p_client_per_minute": 1, "p_chat_per_minute": 1,
    },
}  # fmt: skip


@pytest.fixture
async def answered(
    store: SupabaseMessageStore, incoming: Callable[..., IncomingMessage], worker_queue_clear: None
) -> str:
    """One answered message (with classification, reply and a delivery attempt) to look for."""
    intake = await store.intake(incoming())
    [claimed] = await store.claim("w", 1, 30, 3)
    triage = Triage(
        classification=Classification(
            category="greeting", intent="hello", sentiment="neutral", urgency="low", language="ru", confidence=0.5,
            needs_human=False,
        ),
        reply="Здравствуйте!",
        usage=Usage(model="m", prompt_version="v"),
    )  # fmt: skip
    await store.complete(claimed.id, "w", triage, MessageState.ANSWERED)
    return intake.conversation_id


@pytest.fixture
async def operator(operators: Operators) -> str:
    return (await operators.make("agent")).user_id


def rest(stack: Stack, token: str | None) -> httpx.Client:
    headers = {"apikey": stack.anon_key}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=f"{stack.url}/rest/v1", headers=headers, timeout=10)


def visible(client: httpx.Client, table: str, conversation_id: str) -> int | str:
    column = "id" if table == "conversations" else "conversation_id"
    if table in ("clients", "delivery_attempts", "operators", "intake_rate_buckets"):
        response = client.get(f"/{table}", params={"select": "*"})
    else:
        response = client.get(f"/{table}", params={column: f"eq.{conversation_id}"})
    if response.status_code != 200:
        return str(response.json().get("code"))
    return len(response.json())


def test_anon_sees_nothing_and_is_refused_outright(stack: Stack, answered: str) -> None:
    with rest(stack, None) as anon:
        assert {table: visible(anon, table, answered) for table in TABLES} == dict.fromkeys(TABLES, "42501")


def test_a_signed_in_user_who_is_not_an_operator_sees_no_rows(stack: Stack, answered: str) -> None:
    with rest(stack, stack.user_token()) as user:
        seen = {table: visible(user, table, answered) for table in TABLES}
    assert seen == {
        "clients": "42501", "conversations": 0, "messages": 0, "classifications": 0, "replies": 0,
        "delivery_attempts": "42501", "operators": 0, "intake_rate_buckets": "42501",
    }  # fmt: skip


def test_an_operator_reads_conversations_messages_classifications_and_replies(
    stack: Stack, answered: str, operator: str
) -> None:
    with rest(stack, stack.user_token(sub=operator)) as op:
        seen = {table: visible(op, table, answered) for table in TABLES}
        write = op.patch("/messages", params={"conversation_id": f"eq.{answered}"}, json={"content": "changed"})
    assert seen == {
        "clients": "42501", "conversations": 1, "messages": 2, "classifications": 1, "replies": 1,
        "delivery_attempts": "42501", "operators": 1, "intake_rate_buckets": "42501",
    }  # fmt: skip
    assert write.status_code in (401, 403) and write.json()["code"] == "42501"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_pipeline_functions_refuse_anon_and_users(stack: Stack, function: str, operator: str) -> None:
    for token in (None, stack.user_token(), stack.user_token(sub=operator)):
        with rest(stack, token) as client:
            response = client.post(f"/rpc/{function}", json=FUNCTIONS[function])
        assert response.status_code in (401, 403), (function, response.text)
        assert response.json()["code"] == "42501"
    with rest(stack, stack.service_key) as service:  # the control: the same call is allowed to the service
        assert service.post(f"/rpc/{function}", json=FUNCTIONS[function]).json() != {"code": "42501"}


async def test_the_catalogue_shows_rls_comments_and_realtime_everywhere(db: asyncpg.Connection) -> None:
    rows = await db.fetch(
        "select c.relname, c.relrowsecurity, obj_description(c.oid) is not null as commented,"
        " (select count(*) from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped"
        "   and col_description(c.oid, a.attnum) is null) as uncommented_columns,"
        " exists (select 1 from pg_publication_tables p where p.pubname = 'supabase_realtime'"
        "   and p.schemaname = 'public' and p.tablename = c.relname) as in_realtime"
        " from pg_class c where c.relnamespace = 'public'::regnamespace and c.relname = any($1::text[])",
        list(TABLES),
    )
    by_name = {row["relname"]: row for row in rows}
    assert set(by_name) == set(TABLES)
    for name, row in by_name.items():
        assert row["relrowsecurity"], f"RLS is off on {name}"
        assert row["commented"] and row["uncommented_columns"] == 0, f"{name} lacks comments"
        assert row["in_realtime"] == (name in OPERATOR_TABLES), name


async def test_no_pipeline_function_is_security_definer_or_executable_by_api_roles(db: asyncpg.Connection) -> None:
    rows = await db.fetch(
        "select p.proname, p.prosecdef, has_function_privilege('anon', p.oid, 'execute') as anon,"
        " has_function_privilege('authenticated', p.oid, 'execute') as authenticated,"
        " has_function_privilege('service_role', p.oid, 'execute') as service"
        " from pg_proc p where p.pronamespace = 'public'::regnamespace and p.proname = any($1::text[])",
        list(FUNCTIONS),
    )
    assert {row["proname"] for row in rows} == set(FUNCTIONS)
    for row in rows:
        assert (row["prosecdef"], row["anon"], row["authenticated"], row["service"]) == (False, False, False, True), row


async def test_role_helpers_are_definer_functions_pinned_to_an_empty_search_path(db: asyncpg.Connection) -> None:
    """is_operator()/is_admin() read operators past its RLS (no recursion), so they must not be hijackable."""
    rows = await db.fetch(
        "select p.proname, p.prosecdef, p.provolatile::text, p.proconfig, obj_description(p.oid, 'pg_proc') as comment,"
        " has_function_privilege('anon', p.oid, 'execute') as anon,"
        " has_function_privilege('authenticated', p.oid, 'execute') as authenticated"
        " from pg_proc p where p.pronamespace = 'public'::regnamespace and p.proname in ('is_operator', 'is_admin')"
    )
    assert {row["proname"] for row in rows} == {"is_operator", "is_admin"}
    for row in rows:
        assert (row["prosecdef"], row["provolatile"], row["proconfig"]) == (True, "s", ['search_path=""']), row
        assert row["comment"], row["proname"]
        assert (row["anon"], row["authenticated"]) == (False, True), row


async def test_the_public_schema_passes_the_database_advisors_policy_and_function_lints(db: asyncpg.Connection) -> None:
    """What Supabase's advisor (splinter) warns about, for our schema: two permissive policies for one role
    and action (each runs on every query), auth.*() evaluated per row instead of once (``(select …)``), and
    functions whose search_path a caller could change."""
    duplicated = await db.fetch(
        "select c.relname, r.rolname, x.cmd, array_agg(p.polname order by p.polname) as policies"
        " from pg_policy p join pg_class c on c.oid = p.polrelid"
        " join pg_roles r on p.polroles @> array[r.oid] or p.polroles = array[0::oid],"
        " unnest(case p.polcmd when 'r' then array['select'] when 'a' then array['insert']"
        "   when 'w' then array['update'] when 'd' then array['delete']"
        "   else array['select', 'insert', 'update', 'delete'] end) x(cmd)"
        " where c.relnamespace = 'public'::regnamespace and p.polpermissive and not r.rolbypassrls"
        "   and r.rolname not like 'pg\\_%'"
        " group by c.relname, r.rolname, x.cmd having count(*) > 1"
    )
    per_row = await db.fetch(
        "select tablename, policyname from pg_policies where schemaname = 'public' and ("
        " (qual ~ 'auth\\.(uid|jwt|role|email)\\(\\)' and lower(qual) !~ 'select\\s+auth\\.(uid|jwt|role|email)\\(\\)')"
        " or (with_check ~ 'auth\\.(uid|jwt|role|email)\\(\\)'"
        "     and lower(with_check) !~ 'select\\s+auth\\.(uid|jwt|role|email)\\(\\)'))"
    )
    mutable = await db.fetch(
        "select p.proname from pg_proc p left join pg_depend d on d.objid = p.oid and d.deptype = 'e'"
        " where p.pronamespace = 'public'::regnamespace and d.objid is null and p.prokind = 'f'"
        "   and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'search_path=%')"
        "   and p.proname !~ '^(rest|rt|fid)_'"  # the REST, Realtime and fidelity tests' own fixtures (tests/.../sql)
    )
    assert [dict(row) for row in duplicated] == []
    assert [dict(row) for row in per_row] == []
    assert [row["proname"] for row in mutable] == []
