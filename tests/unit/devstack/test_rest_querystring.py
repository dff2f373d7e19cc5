"""The PostgREST query-string grammar, parsed into plain data (no database)."""

from __future__ import annotations

import pytest

from neiromatrius_devstack.rest.errors import RestError
from neiromatrius_devstack.rest.model import (
    Field,
    Filter,
    JsonStep,
    Logic,
    OpExpr,
    OrderTerm,
    Range,
    SelectEmbed,
    SelectField,
)
from neiromatrius_devstack.rest.querystring import parse_query, reject_rpc_args
from neiromatrius_devstack.rest.select_grammar import parse_order, parse_select


def test_select_columns_aliases_casts_and_json_paths() -> None:
    assert parse_select("id,t:title,price::text,data->a->>b,first:data->0") == (
        SelectField(Field("id")),
        SelectField(Field("title"), alias="t"),
        SelectField(Field("price"), cast="text"),
        SelectField(Field("data", (JsonStep("->", "a"), JsonStep("->>", "b")))),
        SelectField(Field("data", (JsonStep("->", "0", index=True),)), alias="first"),
    )
    assert Field("data", (JsonStep("->", "a"), JsonStep("->>", "b"))).output_name == "b"


def test_select_embeds_with_alias_hint_join_spread_and_nesting() -> None:
    items = parse_select('*,owner:users!todos_owner_fkey!inner(name),comments(*,author(id)),...tags(name),"odd name"()')
    assert items[0] == SelectField(Field("*"))
    owner, comments, tags, odd = items[1:]
    assert owner == SelectEmbed("users", (SelectField(Field("name")),), "owner", "todos_owner_fkey", "inner")
    assert isinstance(comments, SelectEmbed)
    assert comments.children[1] == SelectEmbed("author", (SelectField(Field("id")),))
    assert tags == SelectEmbed("tags", (SelectField(Field("name")),), spread=True)
    assert odd == SelectEmbed("odd name", ())


def test_select_parses_aggregates_and_rejects_bad_syntax() -> None:
    # Whether aggregates may run is the plan's decision (db-aggregates-enabled), not the grammar's.
    count, total = parse_select("count(),total:amount::int.sum()::text")
    assert count == SelectField(Field("*"), None, None, "count")
    assert total == SelectField(Field("amount"), "total", "int", "sum", "text")
    with pytest.raises(RestError) as broken:
        parse_select("id,name!hint")
    assert broken.value.code == "PGRST100"
    assert broken.value.message.startswith('"failed to parse select parameter (id,name!hint)" (line 1, column ')


def test_filters_with_every_kind_of_operator() -> None:
    query = parse_query(
        "id=eq.1&name=not.ilike.*Al*&tags=cs.%7Ba,%22b%20c%22%7D&x=is.NULL&n=in.(1,%222,3%22,4)"
        "&body=fts(english).fat+cat&p=like(any).%7Ba*,b*%7D&data->a->>b=gte.5&comments.stars=lt.3"
    )
    root = query.conditions()
    assert root == [
        Filter(Field("id"), OpExpr("eq", "1")),
        Filter(Field("name"), OpExpr("ilike", "*Al*", negated=True)),
        Filter(Field("tags"), OpExpr("cs", '{a,"b c"}')),
        Filter(Field("x"), OpExpr("is", "null")),
        Filter(Field("n"), OpExpr("in", ("1", "2,3", "4"))),
        Filter(Field("body"), OpExpr("fts", "fat cat", language="english")),
        Filter(Field("p"), OpExpr("like", "{a*,b*}", quantifier="any")),
        Filter(Field("data", (JsonStep("->", "a"), JsonStep("->>", "b"))), OpExpr("gte", "5")),
    ]
    assert query.conditions(("comments",)) == [Filter(Field("stars"), OpExpr("lt", "3"))]


def test_logic_trees_nest_and_negate() -> None:
    query = parse_query('or=(a.eq.1,and(b.gt.2,c.is.null),d.in.(x,y),e.eq."p,q")&comments.not.and=(s.eq.1,t.cs.{1,2})')
    assert query.conditions() == [
        Logic(
            "or",
            (
                Filter(Field("a"), OpExpr("eq", "1")),
                Logic("and", (Filter(Field("b"), OpExpr("gt", "2")), Filter(Field("c"), OpExpr("is", "null")))),
                Filter(Field("d"), OpExpr("in", ("x", "y"))),
                Filter(Field("e"), OpExpr("eq", "p,q")),
            ),
        )
    ]
    assert query.conditions(("comments",)) == [
        Logic("and", (Filter(Field("s"), OpExpr("eq", "1")), Filter(Field("t"), OpExpr("cs", "{1,2}"))), negated=True)
    ]


def test_value_without_operator_is_an_rpc_argument_or_a_parse_error() -> None:
    query = parse_query("q=hello&ids=%7B1,2%7D&id=gt.3")
    assert query.rpc_args == [("q", "hello"), ("ids", "{1,2}")]
    assert query.conditions() == [Filter(Field("id"), OpExpr("gt", "3"))]
    with pytest.raises(RestError) as error:
        reject_rpc_args(parse_query("id=val"))
    assert error.value.message == '"failed to parse filter (val)" (line 1, column 1)'
    assert error.value.details == 'unexpected "v" expecting "not" or operator (eq, gt, ...)'


def test_unknown_operator_is_named() -> None:
    with pytest.raises(RestError) as error:
        parse_query("a.b=noop.0")  # a dotted key is always a filter
    assert error.value.details == "unknown single value operator noop"


def test_order_terms() -> None:
    assert parse_order("name.desc.nullslast,id,author(name).asc,data->>k") == (
        OrderTerm(Field("name"), direction="desc", nulls="last"),
        OrderTerm(Field("id")),
        OrderTerm(Field("name"), relation="author", direction="asc"),
        OrderTerm(Field("data", (JsonStep("->>", "k"),))),
    )
    with pytest.raises(RestError):
        parse_order("id.ac")


def test_ranges_columns_conflicts_and_canonical_form() -> None:
    query = parse_query("limit=10&offset=5&comments.limit=2&columns=%22title%22,done&on_conflict=a,b&apikey=KEY&b=eq.1")
    assert query.range() == Range(5, 10)
    assert query.range(("comments",)) == Range(0, 2)
    assert query.columns == ("title", "done")
    assert query.on_conflict == ("a", "b")
    assert "apikey" not in query.canonical
    assert query.canonical == "b=eq.1&columns=%22title%22%2Cdone&comments.limit=2&limit=10&offset=5&on_conflict=a%2Cb"
    with pytest.raises(RestError) as negative:
        parse_query("limit=-1")
    assert (negative.value.status, negative.value.code) == (416, "PGRST103")


def test_ranges_intersect_and_cap() -> None:
    assert Range(0, 10).intersect(Range(5, 10)) == Range(5, 5)
    assert Range(2, None).intersect(Range()) == Range(2, None)
    assert Range(0, None).capped(1000) == Range(0, 1000)
    assert Range(3, 5).capped(1000) == Range(3, 5)
