"""SQL built from parsed requests: parameters, casts, embeds, writes, calls (no database)."""

from __future__ import annotations

import pytest

from neiromatrius_devstack.rest.catalog import Catalog, Column, ForeignKey, Function, Param, Relation
from neiromatrius_devstack.rest.errors import RestError
from neiromatrius_devstack.rest.querystring import parse_query
from neiromatrius_devstack.rest.relationships import resolve
from neiromatrius_devstack.rest.sqlfrag import Params, Scope, array_literal, literal, render_condition
from neiromatrius_devstack.rest.sqlread import ReadBuilder, Source
from neiromatrius_devstack.rest.sqlrpc import call_source, find_function, resolve_call
from neiromatrius_devstack.rest.sqlwrite import Returning, insert_sql

TODOS = Relation(
    "public", "todos", "r",
    {"id": Column("id", "bigint"), "title": Column("title", "text"), "owner": Column("owner", "uuid"),
     "data": Column("data", "jsonb"), "tags": Column("tags", "text[]"), "qty": Column("qty", "integer", "7")},
    pk=("id",), uniques=(frozenset({"id"}),),
)  # fmt: skip
USERS = Relation("public", "users", "r", {"id": Column("id", "uuid"), "name": Column("name", "text")}, ("id",))
COMMENTS = Relation(
    "public", "comments", "r", {"id": Column("id", "bigint"), "todo_id": Column("todo_id", "bigint")}, ("id",)
)
OWNER_FK = ForeignKey("todos_owner_fkey", ("public", "todos"), ("owner",), ("public", "users"), ("id",))
COMMENT_FK = ForeignKey("comments_todo_id_fkey", ("public", "comments"), ("todo_id",), ("public", "todos"), ("id",))


def catalog(*extra_fks: ForeignKey) -> Catalog:
    rels = {r.qualified: r for r in (TODOS, USERS, COMMENTS)}
    return Catalog(relations=rels, foreign_keys=[OWNER_FK, COMMENT_FK, *extra_fks])


def where(query: str) -> tuple[str, list[object]]:
    params = Params()
    scope = Scope("todos", {c.name: c.type for c in TODOS.columns.values()})
    sql = " AND ".join(render_condition(c, scope, params) for c in parse_query(query).conditions())
    return sql, params.values


def test_values_are_text_parameters_cast_to_the_column_type() -> None:
    assert where("id=gt.5") == ('"todos"."id" > $1::text::bigint', ["5"])
    assert where("title=eq.x") == ('"todos"."title" = $1::text', ["x"])
    assert where("owner=not.is.null") == ('NOT ("todos"."owner" IS NULL)', [])
    assert where("data->a->>b=eq.1") == ('"todos"."data"->$1::text->>$2::text = $3::text', ["a", "b", "1"])
    assert where("data->a=cs.%7B%22k%22:1%7D") == ('"todos"."data"->$1::text @> $2::text::jsonb', ["a", '{"k":1}'])


def test_in_like_quantifiers_and_full_text() -> None:
    assert where("id=in.(1,%222,3%22)") == ('"todos"."id" = ANY($1::text::bigint[])', ['{"1","2,3"}'])
    assert where("id=in.()") == ('"todos"."id" = ANY($1::text::bigint[])', ["{}"])
    assert where("title=like.*a*") == ('"todos"."title" LIKE $1::text', ["%a%"])
    assert where("title=ilike(all).%7Ba*,*b%7D") == ('"todos"."title" ILIKE ALL($1::text::text[])', ["{a%,%b}"])
    assert where("title=wfts(english).cat") == (
        '"todos"."title" @@ websearch_to_tsquery($1::text::regconfig, $2::text)',
        ["english", "cat"],
    )


def test_logic_trees_render_with_parentheses() -> None:
    sql, values = where("not.or=(id.eq.1,and(title.eq.a,qty.lt.3))")
    assert (
        sql
        == 'NOT ("todos"."id" = $1::text::bigint OR ("todos"."title" = $2::text AND "todos"."qty" < $3::text::integer))'
    )
    assert values == ["1", "a", "3"]


def test_array_and_string_literals_escape_their_quotes() -> None:
    assert array_literal(('a"b', "c\\d")) == '{"a\\"b","c\\\\d"}'
    assert literal("it's \\ here") == "E'it''s \\\\ here'"


def test_read_embeds_become_lateral_joins() -> None:
    query = parse_query("select=title,owner:users(name),comments!inner(id)&comments.id=gt.1")
    params = Params()
    source = Source('"public"."todos"', "todos", {"title": "text"}, TODOS)
    level = ReadBuilder(catalog(), query, params).level(source, query.select, (), [])
    assert level.columns == [
        '"todos"."title" AS "title"',
        '"todos_users_1".pgrst_json AS "owner"',
        'COALESCE("todos_comments_2".pgrst_json, \'[]\') AS "comments"',
    ]
    to_one, to_many = level.joins
    assert to_one.startswith("LEFT JOIN LATERAL (SELECT row_to_json(")
    assert '"users_1"."id" = "todos"."owner"' in to_one
    assert to_many.startswith("INNER JOIN LATERAL (SELECT json_agg(")
    assert '"comments_2"."id" > $1::text::bigint' in to_many
    assert to_many.endswith('ON "todos_comments_2".pgrst_json IS NOT NULL')
    assert level.count_joins == [to_many]  # counting keeps only the joins that can drop rows


def test_relationship_errors() -> None:
    with pytest.raises(RestError) as missing:
        resolve(catalog(), TODOS, "nothing", None)
    assert (missing.value.status, missing.value.code) == (400, "PGRST200")
    second = ForeignKey("todos_editor_fkey", ("public", "todos"), ("owner",), ("public", "users"), ("id",))
    with pytest.raises(RestError) as ambiguous:
        resolve(catalog(second), TODOS, "users", None)
    assert (ambiguous.value.status, ambiguous.value.code) == (300, "PGRST201")
    assert [d["relationship"] for d in ambiguous.value.details] == [
        "todos_owner_fkey using todos(owner) and users(id)",
        "todos_editor_fkey using todos(owner) and users(id)",
    ]
    assert resolve(catalog(second), TODOS, "users", "todos_editor_fkey").fk is second
    assert resolve(catalog(), USERS, "todos", None).cardinality == "one-to-many"


def test_upsert_insert_statement() -> None:
    cols = [TODOS.columns["id"], TODOS.columns["title"]]
    sql = insert_sql(
        TODOS, cols, "$1::json", returning=Returning(rows=True, inserted=True),
        resolution="merge-duplicates", conflict=("id",),
    )  # fmt: skip
    assert sql.startswith('INSERT INTO "public"."todos"("id", "title") SELECT pgrst_body."id", pgrst_body."title" FROM')
    assert 'json_to_recordset(pgrst_uniform_json.val) AS _("id" bigint, "title" text)' in sql
    assert sql.endswith(
        'ON CONFLICT("id") DO UPDATE SET "id" = EXCLUDED."id", "title" = EXCLUDED."title" '
        'RETURNING "public"."todos".*, ("public"."todos".xmax = 0) AS pgrst_inserted'
    )
    with_defaults = insert_sql(TODOS, [TODOS.columns["qty"]], "$1::json", returning=Returning(), defaults=True)
    assert "jsonb_build_object(E'qty', 7) || elem" in with_defaults
    assert with_defaults.endswith("RETURNING 1")


def test_function_overloads_and_calls() -> None:
    add = Function(
        "public", "add", (Param("a", "integer"), Param("b", "integer", True)), False, "scalar", "integer", "i"
    )
    echo = Function("public", "echo", (Param("", "jsonb"),), False, "scalar", "jsonb", "i")
    cat = Catalog(functions={("public", "add"): [add], ("public", "echo"): [echo]})
    assert find_function(cat, "public", "add", ["a"], is_post=True) is add
    assert find_function(cat, "public", "echo", ["anything"], is_post=True) is echo
    with pytest.raises(RestError) as missing:
        find_function(cat, "public", "add", ["c"], is_post=True)
    assert (missing.value.status, missing.value.code) == (404, "PGRST202")
    assert missing.value.message == "Could not find the function public.add(c) in the schema cache"
    params = Params()
    assert call_source(add, ["a"], '{"a":1}', params) == (
        'SELECT "public"."add"("a" := pgrst_body."a") AS pgrst_scalar '
        'FROM json_to_record($1::text::json) AS pgrst_body("a" integer)'
    )
    assert params.values == ['{"a":1}']
    assert call_source(echo, ["x"], "{}", Params()) == 'SELECT "public"."echo"($1::text::jsonb) AS pgrst_scalar'


def test_a_resolved_call_is_remembered_per_catalogue_and_per_set_of_argument_names() -> None:
    add = Function(
        "public", "add", (Param("a", "integer"), Param("b", "integer", True)), False, "scalar", "integer", "i"
    )
    none = Function("public", "now_ish", (), False, "scalar", "integer", "s")
    cat = Catalog(functions={("public", "add"): [add], ("public", "now_ish"): [none]})
    call = resolve_call(cat, "public", "add", ["b", "a"], is_post=True, single_object=False)
    assert call.fn is add and call.takes_body
    assert call.source == call_source(add, ["a", "b"], "{}", Params())  # the body is ``$1``, whatever its value
    assert resolve_call(cat, "public", "add", ["a", "b"], is_post=True, single_object=False) is call
    assert resolve_call(cat, "public", "add", ["a"], is_post=True, single_object=False) is not call
    bare = resolve_call(cat, "public", "now_ish", [], is_post=False, single_object=False)
    assert (bare.source, bare.takes_body) == ('SELECT "public"."now_ish"() AS pgrst_scalar', False)
    with pytest.raises(RestError):  # refusals are not remembered: a reloaded catalogue may know the function
        resolve_call(cat, "public", "add", ["c"], is_post=True, single_object=False)
    reloaded = Catalog(functions={("public", "add"): [add]})
    assert resolve_call(reloaded, "public", "add", ["a", "b"], is_post=True, single_object=False) is not call


def test_single_object_preference_passes_the_whole_body() -> None:
    save = Function("public", "save", (Param("doc", "json"),), False, "scalar", "json", "v")
    cat = Catalog(functions={("public", "save"): [save]})
    assert find_function(cat, "public", "save", ["a", "b"], is_post=True, single_object=True) is save
    params = Params()
    sql = call_source(save, ["a", "b"], '{"a":1,"b":2}', params, single_object=True)
    assert sql == 'SELECT "public"."save"($1::text::json) AS pgrst_scalar'
    assert params.values == ['{"a":1,"b":2}']
