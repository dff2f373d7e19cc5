"""A database made by the bootstrap before /auth/v1 existed is upgraded in place on the next start."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import bcrypt
import httpx
import pytest

from neiromatrius_devstack.process import DevstackProcess

pytestmark = pytest.mark.local_only

# What the bootstrap created in auth before GoTrue's tables (commit 1ecf242), verbatim.
OLD_AUTH_USERS = """
CREATE TABLE IF NOT EXISTS auth.users (
  instance_id uuid, id uuid PRIMARY KEY, aud varchar(255), role varchar(255), email varchar(255) UNIQUE,
  encrypted_password varchar(255), email_confirmed_at timestamptz, confirmed_at timestamptz,
  last_sign_in_at timestamptz, raw_app_meta_data jsonb, raw_user_meta_data jsonb, is_super_admin bool,
  created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now(), phone text,
  is_anonymous bool NOT NULL DEFAULT false, deleted_at timestamptz
);
COMMENT ON TABLE auth.users IS 'Minimal stand-in for GoTrue''s users table (the local stack runs no GoTrue).';
GRANT SELECT ON auth.users TO service_role;
"""

PASSWORD = "set before the upgrade"
OLD_HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()

BACK_TO_OLD = (
    "drop table auth.mfa_amr_claims, auth.refresh_tokens, auth.sessions, auth.identities, auth.users cascade;"
    "drop type auth.aal_level;" + OLD_AUTH_USERS
)


async def _columns(conn: asyncpg.Connection, table: str) -> dict[str, tuple[str, str]]:
    rows = await conn.fetch(
        "select attname, format_type(atttypid, atttypmod) as type, attgenerated::text from pg_attribute"
        " where attrelid = $1::regclass and attnum > 0 and not attisdropped",
        f"auth.{table}",
    )
    return {r["attname"]: (r["type"], r["attgenerated"]) for r in rows}


async def _downgrade(database_url: str, user_id: uuid.UUID) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(BACK_TO_OLD)
        await conn.execute(
            "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, confirmed_at,"
            " raw_app_meta_data, raw_user_meta_data) values ('00000000-0000-0000-0000-000000000000', $1,"
            " 'authenticated', 'authenticated', 'old@example.com', $2, '2026-01-02T03:04:05Z',"
            " '{\"provider\": \"email\", \"providers\": [\"email\"]}', '{}')",
            user_id, OLD_HASH,
        )  # fmt: skip
        assert "is_sso_user" not in await _columns(conn, "users")
    finally:
        await conn.close()


async def _shape(conn: asyncpg.Connection) -> dict[str, list[tuple[str, ...]]]:
    """Columns (type, default, nullability, generation), constraints and indexes of auth's tables."""
    columns = await conn.fetch(
        "select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid),"
        " a.attnotnull::text, a.attgenerated::text from pg_attribute a join pg_class c on c.oid = a.attrelid"
        " left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum"
        " where c.relnamespace = 'auth'::regnamespace and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped"
    )
    constraints = await conn.fetch(
        "select conrelid::regclass::text, conname, pg_get_constraintdef(oid) from pg_constraint"
        " where connamespace = 'auth'::regnamespace"
    )
    indexes = await conn.fetch("select tablename, indexname, indexdef from pg_indexes where schemaname = 'auth'")
    return {
        "columns": sorted(tuple(str(v) for v in r) for r in columns),
        "constraints": sorted(tuple(r) for r in constraints),
        "indexes": sorted(tuple(r) for r in indexes),
    }


async def test_old_auth_users_is_upgraded_in_place(tmp_path: Path, db: asyncpg.Connection) -> None:
    stack = DevstackProcess(tmp_path / "data", migrations_dir=tmp_path / "no-migrations")
    user_id = uuid.uuid4()
    env = stack.start()
    database_url = env["DATABASE_URL"].replace("+asyncpg", "", 1)
    try:
        await _downgrade(database_url, user_id)
    finally:
        assert stack.stop() == 0
    again = stack.start()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            signed_in = await http.post(
                f"{again['SUPABASE_URL']}/auth/v1/token", params={"grant_type": "password"},
                json={"email": "old@example.com", "password": PASSWORD}, headers={"apikey": again["SUPABASE_ANON_KEY"]},
            )  # fmt: skip
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["user"]["id"] == str(user_id)
        conn = await asyncpg.connect(database_url)
        try:
            assert await _shape(conn) == await _shape(db), "an upgraded database has a fresh one's auth schema"
            users = await _columns(conn, "users")
            assert users["confirmed_at"] == ("timestamp with time zone", "s"), "confirmed_at must become generated"
            assert users["is_sso_user"][0] == "boolean"
            assert users["banned_until"][0] == "timestamp with time zone"
            row = await conn.fetchrow(
                "select email, email_confirmed_at, confirmed_at from auth.users where id = $1", user_id
            )
            assert row["email"] == "old@example.com"
            assert row["email_confirmed_at"] == row["confirmed_at"], (
                "the old confirmation survives as email_confirmed_at"
            )
            assert (await _columns(conn, "identities"))["email"] == ("text", "s")
            assert (await _columns(conn, "sessions"))["aal"][0] == "auth.aal_level"
            assert "session_id" in await _columns(conn, "refresh_tokens")
            granted = await conn.fetchval("select has_table_privilege('service_role', 'auth.users', 'select')")
            assert granted is False, "Supabase gives the API roles no direct access to auth tables"
            owner = await conn.fetchval(
                "select tableowner from pg_tables where schemaname='auth' and tablename='users'"
            )
            assert owner == "supabase_auth_admin"
            sessions = await conn.fetchval("select count(*) from auth.sessions where user_id = $1", user_id)
            assert sessions == 1, "the sign-in after the upgrade wrote its session"
        finally:
            await conn.close()
    finally:
        stack.stop()


async def test_deleting_a_user_cascades_to_its_auth_rows(db: asyncpg.Connection) -> None:
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    email = f"cascade-{user_id}@example.com"
    await db.execute(
        "insert into auth.users (id, aud, role, email, created_at, updated_at) values"
        " ($1, 'authenticated', 'authenticated', $2, now(), now())",
        user_id, email,
    )  # fmt: skip
    await db.execute(
        "insert into auth.identities (provider_id, user_id, identity_data, provider) values ($1, $2, $3, 'email')",
        str(user_id), user_id, f'{{"sub": "{user_id}", "email": "{email.upper()}"}}',
    )  # fmt: skip
    await db.execute("insert into auth.sessions (id, user_id, aal) values ($1, $2, 'aal1')", session_id, user_id)
    await db.execute(
        "insert into auth.refresh_tokens (token, user_id, revoked, session_id) values ($1, $2, false, $3)",
        f"tok-{session_id}", str(user_id), session_id,
    )  # fmt: skip
    assert await db.fetchval("select email from auth.identities where user_id = $1", user_id) == email
    await db.execute("delete from auth.users where id = $1", user_id)
    for table, column in (("identities", "user_id"), ("sessions", "user_id"), ("refresh_tokens", "session_id")):
        value = session_id if column == "session_id" else user_id
        assert await db.fetchval(f"select count(*) from auth.{table} where {column} = $1", value) == 0
