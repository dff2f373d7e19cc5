"""Protocol details decided without a database: ranges, preferences, media types, errors, tokens."""

from __future__ import annotations

import json
import time

import asyncpg
import pytest

from neiromatrius_devstack import jwt
from neiromatrius_devstack.rest.auth import Authenticator
from neiromatrius_devstack.rest.errors import RestError, from_pg
from neiromatrius_devstack.rest.negotiation import Media, choose_schema, negotiate_media
from neiromatrius_devstack.rest.preferences import parse_preferences
from neiromatrius_devstack.rest.reply import Reply, apply_gucs, content_range, range_status

SECRET = "a-local-secret-with-at-least-32-characters"


@pytest.mark.parametrize(
    ("lower", "upper", "total", "header", "status"),
    [
        (0, 9, None, "0-9/*", 200),
        (0, -1, None, "*/*", 200),
        (0, 9, 10, "0-9/10", 200),
        (0, 1, 5, "0-1/5", 206),
        (0, -1, 0, "*/0", 200),
        (5, 4, 5, "*/5", 206),
        (7, 6, 5, "*/5", 416),
    ],
)
def test_content_range_and_status(lower: int, upper: int, total: int | None, header: str, status: int) -> None:
    assert content_range(lower, upper, total) == header
    assert range_status(lower, upper, total) == status


def test_preferences_first_value_wins_and_applied_order_is_postgrests() -> None:
    prefs = parse_preferences(["count=exact, return=minimal", "return=representation,resolution=merge-duplicates,x=y"])
    assert prefs.representation == "minimal"
    assert prefs.invalid == ("x=y",)
    assert (
        prefs.applied(["return", "count", "resolution", "tx"])
        == "resolution=merge-duplicates, return=minimal, count=exact"
    )
    assert parse_preferences(["handling=strict, max-affected=2"]).max_affected == 2
    assert parse_preferences(["max-affected=2"]).max_affected is None  # only with handling=strict
    with pytest.raises(RestError) as strict:
        parse_preferences(["handling=strict, nonsense"])
    assert (strict.value.code, strict.value.details) == ("PGRST122", "Invalid preferences: nonsense")


def test_media_negotiation() -> None:
    assert negotiate_media(None).media is Media.JSON
    single = negotiate_media("application/vnd.pgrst.object+json")
    assert single.singular and single.content_type == "application/vnd.pgrst.object+json; charset=utf-8"
    stripped = negotiate_media("application/vnd.pgrst.array+json;nulls=stripped")
    assert stripped.content_type == "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8"
    assert negotiate_media("text/html;q=0.9, text/csv").media is Media.CSV
    with pytest.raises(RestError) as unsupported:
        negotiate_media("application/xml")
    assert (unsupported.value.status, unsupported.value.code) == (406, "PGRST107")


def test_profiles_pick_the_schema() -> None:
    assert choose_schema("GET", {}, ("public",)) == ("public", False)
    assert choose_schema("GET", {"accept-profile": "public"}, ("public",)) == ("public", True)
    assert choose_schema("POST", {"content-profile": "api", "accept-profile": "x"}, ("public", "api")) == ("api", True)
    with pytest.raises(RestError) as wrong:
        choose_schema("GET", {"accept-profile": "private"}, ("public",))
    assert (wrong.value.status, wrong.value.code) == (406, "PGRST106")


def _pg_error(fields: dict[str, str]) -> asyncpg.PostgresError:
    error = asyncpg.PostgresError.new(fields)
    assert isinstance(error, asyncpg.PostgresError)
    return error


@pytest.mark.parametrize(
    ("sqlstate", "message", "authed", "status"),
    [
        ("23505", "duplicate key", True, 409),
        ("23503", "fk", True, 409),
        ("42501", "permission denied", False, 401),
        ("42501", "permission denied", True, 403),
        ("42P01", 'relation "x" does not exist', True, 404),
        ("42883", "function f() does not exist", True, 404),
        ("25006", "read-only transaction", True, 405),
        ("P0001", "raised", True, 400),
        ("P0002", "no data", True, 500),
        ("22P02", "invalid input syntax", True, 400),
        ("21000", "UPDATE requires a WHERE clause", True, 400),
        ("21000", "more than one row returned", True, 500),
        ("57014", "canceling statement due to statement timeout", True, 500),
        ("53300", "too many connections", True, 503),
        ("PT402", "pay me", True, 402),
    ],
)
def test_sqlstate_to_http(sqlstate: str, message: str, authed: bool, status: int) -> None:
    error = from_pg(_pg_error({"C": sqlstate, "M": message, "D": "the detail"}), authed)
    assert (error.status, error.code, error.message, error.details, error.hint) == (
        status, sqlstate, message, "the detail", None,
    )  # fmt: skip
    assert ("WWW-Authenticate" in error.headers) == (status == 401)
    assert json.loads(error.body()) == {"code": sqlstate, "details": "the detail", "hint": None, "message": message}


def test_raise_pgrst_controls_the_whole_answer() -> None:
    message = json.dumps({"code": "123", "message": "custom", "details": "d", "hint": "h"})
    detail = json.dumps({"status": 419, "headers": {"X-Why": "because"}})
    error = from_pg(_pg_error({"C": "PGRST", "M": message, "D": detail}), True)
    assert (error.status, error.code, error.message, error.details, error.hint) == (419, "123", "custom", "d", "h")
    assert error.headers == {"X-Why": "because"}


def test_response_gucs_override_status_and_headers() -> None:
    reply = apply_gucs(Reply(200, {"A": "1"}), '[{"Cache-Control": "no-cache"}]', "202")
    assert (reply.status, reply.headers) == (202, {"A": "1", "Cache-Control": "no-cache"})
    with pytest.raises(RestError) as bad:
        apply_gucs(Reply(200), '{"not": "a list"}', None)
    assert bad.value.code == "PGRST111"


def test_identity_from_bearer_tokens() -> None:
    auth = Authenticator(SECRET, "anon")
    anonymous = auth.identify(None)
    assert (anonymous.role, json.loads(anonymous.claims_json), anonymous.authed) == ("anon", {"role": "anon"}, False)
    user = auth.identify("bearer " + jwt.user_token(SECRET, sub="u1"))
    assert (user.role, user.authed, json.loads(user.claims_json)["sub"]) == ("authenticated", True, "u1")
    no_role = auth.identify("Bearer " + jwt.sign({"sub": "x"}, SECRET))
    assert (no_role.role, json.loads(no_role.claims_json)["role"]) == ("anon", "anon")
    with pytest.raises(RestError) as expired:
        auth.identify("Bearer " + jwt.sign({"role": "anon", "exp": int(time.time()) - 60}, SECRET))
    assert (expired.value.status, expired.value.code, expired.value.message) == (401, "PGRST301", "JWT expired")
    assert expired.value.headers["WWW-Authenticate"] == 'Bearer error="invalid_token", error_description="JWT expired"'
