"""The pre-deploy checks that talk to something: the database, PostgREST, Realtime, OpenAI, Telegram, Redis.

Each returns one ``Check`` and bounds its own waiting (the runner bounds it again). Failures are
described in our words, from status codes and exception types: vendor messages and URLs are never
printed, because a Telegram URL carries the bot token and a DSN its password.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import redis.asyncio as aioredis
from realtime import RealtimeSubscribeStates
from redis.exceptions import AuthenticationError, RedisError
from supabase import AsyncClientOptions, acreate_client
from supabase.types import RealtimeClientOptions
from websockets.exceptions import InvalidStatus

from ..config import Settings
from .model import Check
from .settings import FIXES

MIGRATION_FILE = re.compile(r"^(?P<version>\d+)_(?P<name>.+)\.sql$")  # the Supabase CLI's rule
_DB_FIX = "check host and port (5432 direct, 6543 pooler), that Supabase runs, and the firewall between"


def asyncpg_dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


def masked_dsn(database_url: str) -> str:
    """The DSN for a command to paste, with the password left for the reader to fill in."""
    parts = urlsplit(asyncpg_dsn(database_url))
    user = f"{parts.username}:PASSWORD@" if parts.username else ""
    return parts._replace(netloc=f"{user}{parts.hostname}:{parts.port or 5432}").geturl()


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}"


async def database(database_url: str, within: float) -> Check:
    name, variable, where = "Database", "DATABASE_URL", _where(database_url)
    try:
        conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=within)
    except asyncpg.InvalidPasswordError:
        fix = "copy the password from Supabase Dashboard → Settings → Database (reset it there if lost)"
        return Check.failed(name, f"{where} rejected the password", fix, variable)
    except asyncpg.InvalidCatalogNameError:
        return Check.failed(name, f"no such database at {where}", "the database is usually postgres", variable)
    except asyncpg.InvalidAuthorizationSpecificationError:
        return Check.failed(name, f"{where} refused the user", "the user is usually postgres", variable)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return Check.failed(name, f"nothing answers at {where} ({type(exc).__name__})", _DB_FIX, variable)
    try:
        answer = await conn.fetchval("select 1", timeout=within)
    finally:
        await conn.close(timeout=within)
    return Check.passed(
        name, f"answers SELECT 1 ({where})" if answer == 1 else f"answered SELECT 1 with {answer!r}", variable
    )


def migration_files(directory: Path) -> dict[str, str]:
    """Version → file name, for every file the Supabase CLI would push."""
    found = {}
    for path in sorted(directory.glob("*.sql")):
        if match := MIGRATION_FILE.match(path.name):
            found[match["version"]] = path.name
    return found


async def migrations(database_url: str, directory: Path, within: float) -> Check:
    name, files = "Migrations", migration_files(directory)
    conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=within)
    try:
        rows = await conn.fetch("select version from supabase_migrations.schema_migrations", timeout=within)
        applied = {row["version"] for row in rows}
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        applied = set()  # nothing was ever pushed with the Supabase CLI
    finally:
        await conn.close(timeout=within)
    missing = [files[version] for version in sorted(files) if version not in applied]
    if missing:
        detail = f"{len(missing)} of {len(files)} in {directory} not applied: {', '.join(missing)}"
        return Check.failed(name, detail, f'supabase db push --db-url "{masked_dsn(database_url)}"')
    return Check.passed(name, f"are all applied ({len(files)} in {directory})")


def _supabase_headers(key: str) -> dict[str, str]:
    headers = {"apikey": key}
    if not key.startswith("sb_"):  # new-style keys go in apikey only; the gateway mints the JWT
        headers["Authorization"] = f"Bearer {key}"
    return headers


async def postgrest(http: httpx.AsyncClient, settings: Settings) -> Check:
    name = "PostgREST"
    key = settings.supabase_service_role_key.get_secret_value()
    url = f"{settings.supabase_url.rstrip('/')}/rest/v1/rpc/health_check"
    try:
        response = await http.post(url, headers=_supabase_headers(key), json={})
    except httpx.HTTPError as exc:
        detail = f"cannot reach {urlsplit(url).netloc} ({type(exc).__name__})"
        return Check.failed(name, detail, FIXES["SUPABASE_URL"], "SUPABASE_URL")
    if response.status_code in (401, 403):
        detail = f"rejected the service key ({response.status_code})"
        return Check.failed(name, detail, FIXES["SUPABASE_SERVICE_ROLE_KEY"], "SUPABASE_SERVICE_ROLE_KEY")
    if response.status_code == 404:
        return Check.failed(name, "has no health_check function (404)", "apply the migrations: supabase db push")
    if response.status_code != 200 or response.content.strip() != b"true":
        detail = f"answered {response.status_code} to health_check, not true"
        return Check.failed(name, detail, "look at the PostgREST and database logs", "SUPABASE_URL")
    return Check.passed(name, "answers health_check with the service key")


async def realtime(settings: Settings, within: float) -> Check:
    name = "Realtime"
    options = AsyncClientOptions(
        auto_refresh_token=False,
        persist_session=False,
        realtime=RealtimeClientOptions(max_retries=1, auto_reconnect=False),  # the timeout bounds the rest
    )
    key = settings.supabase_service_role_key.get_secret_value()
    client = await acreate_client(settings.supabase_url, key, options)
    states: list[RealtimeSubscribeStates] = []
    try:
        channel = client.channel(f"neiromatrius-check-{uuid.uuid4().hex[:8]}")
        async with asyncio.timeout(within):
            await channel.subscribe(lambda state, _error: states.append(state))
    except InvalidStatus as exc:
        if exc.response.status_code in (401, 403):
            detail = f"refused the service key ({exc.response.status_code})"
            return Check.failed(name, detail, FIXES["SUPABASE_SERVICE_ROLE_KEY"], "SUPABASE_SERVICE_ROLE_KEY")
        detail = f"refused the websocket ({exc.response.status_code})"
        return Check.failed(name, detail, "check SUPABASE_URL and that Realtime runs", "SUPABASE_URL")
    except Exception as exc:  # realtime-py raises a bare Exception once it gives up connecting
        detail = f"could not join a channel ({type(exc).__name__})"
        return Check.failed(name, detail, "check SUPABASE_URL and that Realtime runs", "SUPABASE_URL")
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await client.remove_all_channels()
                await client.realtime.close()
    state = states[-1] if states else None
    if state == RealtimeSubscribeStates.SUBSCRIBED:
        return Check.passed(name, "joins a channel with the service key")
    detail = f"the channel join ended {state.value if state else 'without an answer'}"
    return Check.failed(name, detail, FIXES["SUPABASE_SERVICE_ROLE_KEY"], "SUPABASE_SERVICE_ROLE_KEY")


async def openai(http: httpx.AsyncClient, settings: Settings) -> Check:
    name, variable = "OpenAI", "OPENAI_API_KEY"
    assert settings.openai_api_key is not None
    url = f"{settings.openai_base_url.rstrip('/')}/models"
    headers = {"Authorization": f"Bearer {settings.openai_api_key.get_secret_value()}"}
    try:
        response = await http.get(url, headers=headers)
    except httpx.HTTPError as exc:
        detail = f"cannot reach {urlsplit(url).netloc} ({type(exc).__name__})"
        return Check.failed(name, detail, FIXES["OPENAI_BASE_URL"], "OPENAI_BASE_URL")
    if response.status_code in (401, 403):
        detail = f"rejected OPENAI_API_KEY ({response.status_code})"
        return Check.failed(name, detail, "create a key at https://platform.openai.com/api-keys", variable)
    if response.status_code != 200:
        return Check.failed(
            name, f"answered {response.status_code} to GET /models", "see the provider's status", variable
        )
    models = _model_ids(response)
    if models and settings.openai_model not in models:
        detail = f"{settings.openai_model} is not among the {len(models)} models this key may use"
        return Check.failed(name, detail, "set OPENAI_MODEL to one of them, e.g. gpt-4o-mini", "OPENAI_MODEL")
    return Check.passed(name, f"accepts OPENAI_API_KEY; {settings.openai_model} is available", variable)


def _model_ids(response: httpx.Response) -> set[str]:
    try:
        data: Any = response.json().get("data")
        return {str(model["id"]) for model in data}
    except (ValueError, TypeError, KeyError, AttributeError):
        return set()


async def telegram(http: httpx.AsyncClient, settings: Settings) -> Check:
    name, variable = "Telegram", "TELEGRAM_BOT_TOKEN"
    assert settings.telegram_bot_token is not None
    url = f"{settings.telegram_api_url.rstrip('/')}/bot{settings.telegram_bot_token.get_secret_value()}/getMe"
    try:
        response = await http.get(url)
    except httpx.HTTPError as exc:  # its text would carry the URL, and the URL the token
        detail = f"cannot reach {urlsplit(settings.telegram_api_url).netloc} ({type(exc).__name__})"
        return Check.failed(name, detail, "check that this machine reaches the Bot API (firewall, proxy)")
    if response.status_code in (401, 404):
        detail = f"rejected TELEGRAM_BOT_TOKEN ({response.status_code})"
        return Check.failed(name, detail, FIXES[variable], variable)
    try:
        me: Any = response.json()
        username = me["result"]["username"] if me.get("ok") else None
    except (ValueError, TypeError, KeyError, AttributeError):
        username = None
    if response.status_code != 200 or username is None:
        return Check.failed(name, f"getMe answered {response.status_code}", "see https://status.telegram.org", variable)
    return Check.passed(name, f"accepts TELEGRAM_BOT_TOKEN (@{username})", variable)


async def redis_ping(url: str, within: float) -> Check:
    name, variable = "Redis", "REDIS_URL"
    parts = urlsplit(url)
    where = parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"
    client = aioredis.from_url(url, socket_connect_timeout=within, socket_timeout=within)
    try:
        await client.ping()
    except AuthenticationError:
        return Check.failed(name, f"{where} rejected the password", "copy the password into REDIS_URL", variable)
    except (RedisError, OSError, TimeoutError) as exc:
        detail = f"nothing answers at {where} ({type(exc).__name__})"
        return Check.failed(name, detail, "start Redis or fix REDIS_URL (or unset it for the fallback)", variable)
    finally:
        await client.aclose()
    return Check.passed(name, f"answers PING ({where})", variable)
