"""Parsing postgres_changes bindings, Realtime's token rules, presence diffs and payload shapes."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import jwt
import pytest

from neiromatrius_devstack.realtime import auth
from neiromatrius_devstack.realtime.catalog import ColumnInfo, TableInfo
from neiromatrius_devstack.realtime.changes import Change
from neiromatrius_devstack.realtime.dispatcher import build_data
from neiromatrius_devstack.realtime.pgoutput import Column, Relation
from neiromatrius_devstack.realtime.presence import Presence
from neiromatrius_devstack.realtime.render import Rendered, filter_sql, surely_fails
from neiromatrius_devstack.realtime.subscriptions import (
    Filter,
    Registry,
    Subscription,
    SubscriptionError,
    binding_id,
    echo,
    parse_binding,
    parse_filters,
)

SECRET = "unit-test-secret-with-at-least-32-characters"


def test_filters_in_realtimes_notation() -> None:
    assert parse_filters("id=eq.1") == [Filter("id", "eq", "1")]
    assert parse_filters("status=in.(a,b,c)") == [Filter("status", "in", "{a,b,c}")]
    assert parse_filters("n=not.gte.5, label=like.x%") == [Filter("n", "gte", "5", True), Filter("label", "like", "x%")]
    assert parse_filters('label=eq."a,b"') == [Filter("label", "eq", "a,b")]
    assert parse_filters("  ") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("subject=foo.hey", 'Error parsing `filter` params: ["foo", "hey"]'),
        ("undefined", 'Error parsing `filter` params: ["undefined"]'),
        ("id=in.1,2", "Error parsing `filter` params: `in` filter value must be wrapped by parentheses"),
        ("id=eq.1,,", "Error parsing `filter` params: filter must not contain empty segments (check for extra commas)"),
    ],
)
def test_bad_filters_get_realtimes_messages(text: str, message: str) -> None:
    with pytest.raises(SubscriptionError) as info:
        parse_filters(text)
    assert str(info.value) == message


def test_binding_defaults_follow_realtime() -> None:
    only_schema = parse_binding({"event": "*", "schema": "public"})
    assert (only_schema.schema, only_schema.table, only_schema.action) == ("public", "*", "*")
    only_table = parse_binding({"event": "insert", "table": "todos"})
    assert (only_table.schema, only_table.table, only_table.action) == ("public", "todos", "INSERT")
    assert parse_binding({"event": "bogus", "schema": "public", "table": "t"}).action == "*"
    with pytest.raises(SubscriptionError, match="No subscription params provided"):
        parse_binding({"event": "*"})
    with pytest.raises(SubscriptionError, match="wildcard"):
        parse_binding({"event": "*", "schema": "public", "select": ["id"]})


def test_binding_ids_are_stable_nonzero_and_echoed_verbatim() -> None:
    params = {"event": "INSERT", "schema": "public", "table": "t", "filter": "id=eq.1"}
    assert binding_id(params) == binding_id(dict(reversed(params.items()))) > 0
    assert binding_id(params) != binding_id({**params, "filter": "id=eq.2"})
    assert echo(params) == {**params, "id": binding_id(params)}
    assert parse_binding(params).id == binding_id(params)


def test_binding_matching() -> None:
    binding = parse_binding({"event": "UPDATE", "schema": "public", "table": "t"})
    assert binding.matches("public", "t", "UPDATE")
    assert not binding.matches("public", "t", "INSERT") and not binding.matches("public", "u", "UPDATE")
    assert parse_binding({"event": "*", "schema": "*"}).matches("other", "x", "DELETE")


class _Listener:
    topic = "realtime:t"
    claims: dict[str, object] = {}  # noqa: RUF012 (the Listener protocol's attribute)
    since_lsn = 0

    def deliver(self, event: str, payload: object) -> None:
        raise AssertionError("not delivered in these tests")


def test_the_registry_forgets_what_it_knew_wanted_on_every_join_and_leave() -> None:
    registry = Registry()
    assert not registry.wants("public", "t", "INSERT")  # remembered as unwanted…
    wildcard, exact = _Listener(), _Listener()
    registry.add(Subscription(wildcard, (parse_binding({"event": "INSERT", "schema": "*"}),)))
    assert registry.wants("public", "t", "INSERT")  # …until a join
    assert not registry.wants("public", "t", "DELETE")
    registry.add(Subscription(exact, (parse_binding({"event": "*", "schema": "public", "table": "t"}),)))
    assert registry.wants("public", "t", "DELETE")
    assert [listener for listener, _ in registry.matching("public", "t", "INSERT")] == [wildcard, exact]
    registry.remove(exact)
    assert not registry.wants("public", "t", "DELETE")  # and a leave
    assert list(registry.matching("public", "t", "DELETE")) == []
    registry.remove(wildcard)
    assert not registry.wants("public", "t", "INSERT")


def test_which_filters_are_judged_without_postgres() -> None:
    text, number = ColumnInfo("state", "text", "text"), ColumnInfo("qty", "int4", "integer")
    values: dict[str, str | None] = {"state": "pending", "qty": "2", "note": None}
    assert surely_fails(Filter("state", "eq", "answered"), values, text)
    assert not surely_fails(Filter("state", "eq", "pending"), values, text)
    assert surely_fails(Filter("state", "eq", "pending", negate=True), values, text)
    assert surely_fails(Filter("state", "neq", "pending"), values, text)
    assert surely_fails(Filter("state", "in", "{answered,failed}"), values, text)
    assert not surely_fails(Filter("state", "in", "{answered,pending}"), values, text)
    assert not surely_fails(Filter("state", "in", '{"answered",failed}'), values, text)  # quoting: Postgres's
    assert not surely_fails(Filter("state", "lt", "a"), values, text)  # ordering: the collation's
    assert not surely_fails(Filter("qty", "eq", "02"), values, number)  # 02 = 2 for integers
    assert surely_fails(Filter("note", "eq", "x"), values, ColumnInfo("note", "text", "text"))  # NULL
    assert surely_fails(Filter("note", "neq", "x", negate=True), values, ColumnInfo("note", "text", "text"))
    assert not surely_fails(Filter("note", "is", "null"), values, ColumnInfo("note", "text", "text"))
    assert surely_fails(Filter("body", "eq", "x"), values, ColumnInfo("body", "text", "text"))  # not in the record
    assert surely_fails(Filter("gone", "eq", "x"), {"gone": "x"}, None)  # not in the table


def test_filter_sql() -> None:
    assert filter_sql(Filter("n", "gte", "5"), "$1::text::integer", "integer", 2) == (
        "coalesce($1::text::integer >= $2::text::integer, false)"
    )
    assert filter_sql(Filter("n", "in", "{1,2}", True), "$1::text::integer", "integer", 2) == (
        "coalesce(not ($1::text::integer = any($2::text::integer[])), false)"
    )
    assert (
        filter_sql(Filter("d", "is", "NULL"), "$1::text::date", "date", None)
        == "coalesce($1::text::date is null, false)"
    )


def _token(**claims: object) -> str:
    return jwt.encode(claims, SECRET, algorithm="HS256")


def test_tokens_need_role_and_exp_and_no_leeway() -> None:
    now = int(time.time())
    assert auth.verify(_token(role="anon", exp=now + 60), SECRET)["role"] == "anon"
    cases = {
        None: "InvalidJWTToken: API key is missing",
        _token(role="anon"): "InvalidJWTToken: Fields `role` and `exp` are required in JWT",
        _token(exp=now + 60): "InvalidJWTToken: Fields `role` and `exp` are required in JWT",
        "not-a-jwt": "MalformedJWT: The token provided is not a valid JWT",
        jwt.encode({"role": "anon", "exp": now + 60}, "another-secret-of-at-least-32-characters!"): (
            "JwtSignatureError: Failed to validate JWT signature"
        ),
    }
    for token, reason in cases.items():
        with pytest.raises(auth.AuthError) as info:
            auth.verify(token, SECRET)
        assert info.value.reason == reason
    with pytest.raises(auth.AuthError, match=r"^Token has expired \d+ seconds ago$"):
        auth.verify(_token(role="anon", exp=now - 5), SECRET)


def test_presence_track_retrack_and_untrack() -> None:
    presence = Presence()
    joined = presence.track(1, "u1", {"status": "online"})
    meta = joined["joins"]["u1"]["metas"][0]
    assert joined["leaves"] == {} and meta["status"] == "online" and meta["phx_ref"]
    again = presence.track(1, "u1", {"status": "away"})
    assert again["leaves"] == {"u1": {"metas": [meta]}}
    assert again["joins"]["u1"]["metas"][0]["phx_ref_prev"] == meta["phx_ref"]
    assert [m["status"] for m in presence.state()["u1"]["metas"]] == ["away"]
    left = presence.untrack(1)
    assert left is not None and list(left["leaves"]) == ["u1"] and not presence
    assert presence.untrack(1) is None


def _table(rls: bool) -> tuple[Relation, TableInfo]:
    relation = Relation(1, "public", "t", "d", (Column("id", 20, -1, True), Column("body", 25, -1, False)))
    table = TableInfo(
        "public", "t", (ColumnInfo("id", "int8", "bigint"), ColumnInfo("body", "text", "text")), ("id",), rls
    )
    return relation, table


WHEN = datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=UTC)
EVERYTHING = frozenset({"id", "body"})


def test_update_without_old_tuple_has_the_key_as_old_record() -> None:
    relation, table = _table(rls=False)
    change = Change(relation, "UPDATE", ("1", "b"), None, old_full=False)
    rendered = Rendered({"id": "1", "body": '"b"'}, {}, {})
    assert build_data(change, table, rendered, EVERYTHING, None, WHEN) == (
        '{"schema":"public","table":"t","commit_timestamp":"2026-01-02T03:04:05.678Z","type":"UPDATE","errors":null,'
        '"columns":[{"name":"id","type":"int8"},{"name":"body","type":"text"}],'
        '"record":{"id":1,"body":"b"},"old_record":{"id":1}}'
    )


def test_delete_on_an_rls_table_keeps_only_the_primary_key() -> None:
    relation, table = _table(rls=True)
    change = Change(relation, "DELETE", None, ("1", "secret"), old_full=True)
    rendered = Rendered({}, {"id": "1", "body": '"secret"'}, {})
    data = build_data(change, table, rendered, EVERYTHING, None, WHEN)
    assert data.endswith('"old_record":{"id":1}}') and '"record"' not in data


def test_payload_columns_follow_privileges_and_select() -> None:
    relation, table = _table(rls=False)
    change = Change(relation, "INSERT", ("1", "b"), None, old_full=False)
    rendered = Rendered({"id": "1", "body": '"b"'}, {}, {})
    only_id = build_data(change, table, rendered, frozenset({"id"}), None, WHEN)
    assert '"columns":[{"name":"id","type":"int8"}],"record":{"id":1}}' in only_id
    selected = build_data(change, table, rendered, EVERYTHING, ("body",), WHEN)
    assert '"record":{"id":1,"body":"b"}' in selected  # the primary key always comes along
    hidden_key = build_data(change, table, rendered, frozenset({"body"}), None, WHEN)
    assert '"errors":["Error 401: Unauthorized"]' in hidden_key
