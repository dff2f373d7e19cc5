"""The Auth double's pieces without a database: GoTrue's formats, checks and the brake's arithmetic."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from starlette.requests import Request

from neiromatrius_devstack.auth import tokens
from neiromatrius_devstack.auth.durations import parse_duration
from neiromatrius_devstack.auth.errors import AuthError, OAuthError, weak_password
from neiromatrius_devstack.auth.ratelimit import FailedSignIns
from neiromatrius_devstack.auth.settings import AuthSettings
from neiromatrius_devstack.auth.validation import validate_email
from neiromatrius_devstack.auth.wire import error_response, go_time, json_params

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
OTHER_SECRET = "another-secret-that-is-long-enough-for-hs256"
STRUCT = "PasswordGrantParams"
NONE_REASON = "token signature is invalid: signing method none is invalid"


def _request(body: bytes = b"", headers: dict[str, str] | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw, "query_string": b""}, receive)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("24h", timedelta(days=1)), ("1h30m", timedelta(minutes=90)), ("1.5s", timedelta(seconds=1.5)),
     ("300ms", timedelta(milliseconds=300)), ("0", timedelta(0))],
)  # fmt: skip
def test_go_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "10", "5d", "h"])
def test_bad_go_durations_name_the_input(text: str) -> None:
    with pytest.raises(ValueError, match=f'time: invalid duration "{text}"'):
        parse_duration(text)


def test_go_time_trims_the_fraction_like_rfc3339nano() -> None:
    assert go_time(datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)) == "2026-01-02T03:04:05.12Z"
    assert go_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"


def test_the_brake_counts_failures_per_email_and_address_in_a_sliding_window() -> None:
    now = [1000.0]
    brake = FailedSignIns(per_email=2, per_address=3, window=60, clock=lambda: now[0])
    brake.failed("A@example.com", "10.0.0.1")
    assert not brake.refused("a@example.com", "10.0.0.1")
    brake.failed("a@example.com", "10.0.0.1")
    assert brake.refused("a@EXAMPLE.com", "10.0.0.2"), "emails are compared case-insensitively"
    assert not brake.refused("b@example.com", "10.0.0.1")
    brake.failed("b@example.com", "10.0.0.1")
    assert brake.refused("c@example.com", "10.0.0.1"), "three failures from one address"
    now[0] += 61
    assert not brake.refused("a@example.com", "10.0.0.1"), "old failures leave the window"


def test_settings_from_gotrue_variables() -> None:
    assert AuthSettings.from_env({}) == AuthSettings()
    tuned = AuthSettings.from_env({"GOTRUE_JWT_EXP": "600", "GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL": "0"})
    assert (tuned.jwt_exp, tuned.refresh_token_reuse_interval) == (600, 0)
    with pytest.raises(ValueError, match="GOTRUE_JWT_EXP must be positive"):
        AuthSettings.from_env({"GOTRUE_JWT_EXP": "0"})
    with pytest.raises(ValueError, match="DEVSTACK_AUTH_FAILED_SIGNINS_PER_EMAIL must be a whole number"):
        AuthSettings.from_env({"DEVSTACK_AUTH_FAILED_SIGNINS_PER_EMAIL": "five"})


def _token(claims: dict[str, object], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (_token({"sub": "x", "exp": int(time.time()) - 10}), "token has invalid claims: token is expired"),
        (_token({"sub": "x"}, OTHER_SECRET), "token signature is invalid: signature is invalid"),
        (jwt.encode({"sub": "x"}, None, algorithm="none"), NONE_REASON),
        ("not.a.jwt", "token is malformed: "),
    ],
)  # fmt: skip
def test_token_checks_answer_bad_jwt_with_golang_jwt_reasons(token: str, reason: str) -> None:
    with pytest.raises(AuthError) as refused:
        tokens.parse(token, SECRET)
    assert (refused.value.status, refused.value.code) == (403, "bad_jwt")
    assert refused.value.msg.startswith(f"invalid JWT: unable to parse or verify signature, {reason}")


def test_bearer_header_rules() -> None:
    assert tokens.bearer("Bearer abc") == tokens.bearer("bearer abc") == "abc"
    for header in (None, "", "Basic abc", "Bearer", "Bearer a b"):
        with pytest.raises(AuthError) as refused:
            tokens.bearer(header)
        assert (refused.value.status, refused.value.code) == (401, "no_authorization")


def test_refresh_tokens_look_like_gotrue_ones() -> None:
    made = {tokens.refresh_token() for _ in range(50)}
    assert len(made) == 50
    assert all(len(t) == 12 and t.isalnum() and t == t.lower() for t in made)


def test_email_validation_lowercases_and_names_the_problem() -> None:
    assert validate_email("Ada@Example.COM") == "ada@example.com"
    cases = (
        ("", "An email address is required"),
        ("ada", "Unable to validate email address: invalid format"),
        ("a" * 250 + "@x.com", "An email address is too long"),
    )
    for bad, message in cases:
        with pytest.raises(AuthError, match=message):
            validate_email(bad)


def test_error_shapes_follow_the_api_version() -> None:
    error = weak_password(6)
    plain = error_response(_request(), error)
    assert plain.status_code == 422
    assert json.loads(plain.body) == {
        "code": 422, "error_code": "weak_password", "msg": "Password should be at least 6 characters.",
        "weak_password": {"reasons": ["length"]},
    }  # fmt: skip
    versioned = error_response(_request(headers={"X-Supabase-Api-Version": "2024-01-01"}), error)
    assert versioned.headers["x-supabase-api-version"] == "2024-01-01"
    assert json.loads(versioned.body)["code"] == "weak_password"
    oauth = error_response(_request(), OAuthError("invalid_request", "refresh_token required"))
    assert (oauth.status_code, json.loads(oauth.body)) == (
        400, {"error": "invalid_request", "error_description": "refresh_token required"},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "unexpected end of JSON input"),
        (b"[]", f"json: cannot unmarshal array into Go value of type api.{STRUCT}"),
        (b'{"email": 5}', f"json: cannot unmarshal number into Go struct field {STRUCT}.email of type string"),
    ],
)  # fmt: skip
def test_bodies_go_would_not_unmarshal_are_bad_json(body: bytes, detail: str) -> None:
    with pytest.raises(AuthError) as refused:
        asyncio.run(json_params(_request(body), STRUCT, {"email": "string"}))
    assert (refused.value.status, refused.value.code) == (400, "bad_json")
    assert refused.value.msg == f"Could not parse request body as JSON: {detail}"
