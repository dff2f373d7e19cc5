"""The pure rules behind issue 13's PostgREST fidelity fixes: how embeds resolve (constraint names,
self references, colliding names), how a view's rewrite rule maps its columns, and how counts combine."""

from __future__ import annotations

import pytest

from neiromatrius_devstack.rest.catalog import Catalog, Column, ForeignKey, Relation
from neiromatrius_devstack.rest.counting import Counting
from neiromatrius_devstack.rest.errors import RestError
from neiromatrius_devstack.rest.preferences import parse_preferences
from neiromatrius_devstack.rest.querystring import parse_query
from neiromatrius_devstack.rest.relationships import resolve
from neiromatrius_devstack.rest.sqlfrag import Params
from neiromatrius_devstack.rest.sqlread import ReadBuilder, Source
from neiromatrius_devstack.rest.view_keys import ViewColumns, target_origins
from neiromatrius_devstack.rest.view_keys import resolve as resolve_views

USERS = Relation("public", "users", "r", {"id": Column("id", "bigint")}, ("id",), (frozenset({"id"}),))
FRIENDS = Relation(
    "public", "friends", "r",
    {"id": Column("id", "bigint"), "first_user": Column("first_user", "bigint"), "second": Column("second", "bigint")},
    ("id",), (frozenset({"id"}),),
)  # fmt: skip
TREE = Relation(
    "public", "tree", "r", {"id": Column("id", "bigint"), "parent_id": Column("parent_id", "bigint")}, ("id",),
    (frozenset({"id"}),),
)  # fmt: skip
FIRST = ForeignKey("friends_first_user_fkey", ("public", "friends"), ("first_user",), ("public", "users"), ("id",))
SECOND = ForeignKey("friends_second_fkey", ("public", "friends"), ("second",), ("public", "users"), ("id",))
PARENT = ForeignKey("tree_parent_id_fkey", ("public", "tree"), ("parent_id",), ("public", "tree"), ("id",))
CATALOG = Catalog(relations={r.qualified: r for r in (USERS, FRIENDS, TREE)}, foreign_keys=[FIRST, SECOND, PARENT])


def test_a_constraint_name_reaches_the_children_from_the_referenced_table() -> None:
    rel = resolve(CATALOG, USERS, "friends_first_user_fkey", None)
    assert (rel.target.name, rel.cardinality, rel.pairs) == ("friends", "one-to-many", (("id", "first_user"),))


def test_a_constraint_name_reaches_the_parent_from_the_referencing_table() -> None:
    rel = resolve(CATALOG, FRIENDS, "friends_second_fkey", None)
    assert (rel.target.name, rel.cardinality) == ("users", "many-to-one")


def test_a_self_reference_by_table_name_is_the_children_and_by_column_the_parent() -> None:
    children = resolve(CATALOG, TREE, "tree", None)
    assert (children.cardinality, children.pairs) == ("one-to-many", (("id", "parent_id"),))
    parent = resolve(CATALOG, TREE, "parent_id", None)
    assert (parent.cardinality, parent.pairs) == ("many-to-one", (("parent_id", "id"),))


def test_two_foreign_keys_to_one_table_stay_ambiguous_without_a_hint() -> None:
    with pytest.raises(RestError) as caught:
        resolve(CATALOG, USERS, "friends", None)
    assert (caught.value.status, caught.value.code) == (300, "PGRST201")
    assert resolve(CATALOG, USERS, "friends", "second").fk is SECOND


def test_two_embeds_under_one_name_collide_like_postgrests_from_aliases() -> None:
    query = parse_query("select=id,users!first_user(id),users!second(id)")
    builder = ReadBuilder(CATALOG, query, Params())
    source = Source('"public"."friends"', "friends", FRIENDS.filter_types, FRIENDS)
    with pytest.raises(RestError) as caught:
        builder.level(source, query.select, (), [])
    assert (caught.value.status, caught.value.code) == (400, "42712")
    assert caught.value.message == 'table name "friends_users_1" specified more than once'


# The shape PostgreSQL 15-18 print for ``create view v as select id as book_id, (select 1) as one,
# author_id as writer from books``: a sub-select in the target list has a target list of its own.
VIEW_TREE = (
    '({QUERY :commandType 1 :rtable ({RANGETBLENTRY :eref {ALIAS :aliasname books :colnames ("id" "a\\ b")} '
    ":relid 500}) :targetList ({TARGETENTRY :expr {VAR :varno 1 :varattno 1} :resno 1 :resname book_id "
    ":resorigtbl 500 :resorigcol 1 :resjunk false} {TARGETENTRY :expr {SUBLINK :subselect {QUERY :targetList "
    "({TARGETENTRY :expr {CONST} :resno 1 :resname ?column? :resorigtbl 0 :resorigcol 0 :resjunk false})}} "
    ":resno 2 :resname one :resorigtbl 0 :resorigcol 0 :resjunk false} {TARGETENTRY :expr {VAR :varno 1 "
    ":varattno 3} :resno 3 :resname writer :resorigtbl 500 :resorigcol 3 :resjunk false}) :override 0})"
)


def test_a_views_rewrite_rule_gives_each_plain_column_its_base_column() -> None:
    assert target_origins(VIEW_TREE) == [(1, 500, 1), (3, 500, 3)]


def test_views_over_views_are_followed_to_the_base_table() -> None:
    direct = {700: {"no": (600, 2)}, 600: {"book_id": (500, 1), "writer": (500, 3)}}
    names = {600: ["book_id", "writer"], 700: ["no"]}
    views = {v.view: v for v in resolve_views(direct, {600, 700}, names)}
    assert views[700] == ViewColumns(700, {(500, 3): ("no",)})
    assert views[600].names(500, [3, 1]) == ("writer", "book_id")
    assert views[700].names(500, [1]) is None


@pytest.mark.parametrize(
    ("prefer", "counted", "planned", "total"),
    [
        ("count=exact", 5, None, 5),
        ("count=planned", None, 812, 812),
        ("count=estimated", 7, 30, 7),  # within db-max-rows: exact
        ("count=estimated", 1001, 1500, 1500),  # past it: the larger of the capped count and the estimate
        ("count=estimated", 1001, 900, 1001),
    ],
)
def test_counts_combine_the_exact_and_planned_figures_like_postgrest(
    prefer: str, counted: int | None, planned: int | None, total: int
) -> None:
    assert Counting.of(parse_preferences([prefer]), 1000).total(counted, planned) == total


def test_an_estimated_count_stops_counting_past_max_rows() -> None:
    counting = Counting.of(parse_preferences(["count=estimated"]), 1000)
    assert (
        counting.total_sql('"t"') == '(SELECT pg_catalog.count(*) FROM (SELECT 1 FROM "t" LIMIT 1001) AS pgrst_capped)'
    )
    assert (
        counting.explain_sql('"t" WHERE x = $1::text', 2) == 'SELECT 1, $1::text, $2::text FROM "t" WHERE x = $1::text'
    )
