from pathlib import Path

from neiromatrius_devstack.migrations import discover, split_statements


def test_splits_on_top_level_semicolons_only() -> None:
    sql = """
    -- a comment; with a semicolon
    create table t (a text default 'x;y');
    create function f() returns int language sql as $$ select 1; $$;
    /* block; comment */ insert into "we;ird" values (1);
    do $body$ begin perform 1; end $body$
    """
    statements = split_statements(sql)
    assert len(statements) == 4
    assert statements[0].endswith("create table t (a text default 'x;y');")
    assert statements[1] == "create function f() returns int language sql as $$ select 1; $$;"
    assert statements[2].endswith('insert into "we;ird" values (1);')
    assert statements[3] == "do $body$ begin perform 1; end $body$"


def test_comment_only_tail_is_not_a_statement() -> None:
    assert split_statements("select 1;\n-- done\n") == ["select 1;"]


def test_discover_orders_by_version_and_skips_misnamed(tmp_path: Path) -> None:
    for name in ("20260102000000_second.sql", "20260101000000_first.sql", "notes.sql"):
        (tmp_path / name).write_text("select 1;")
    found = discover(tmp_path)
    assert [(m.version, m.name) for m in found] == [("20260101000000", "first"), ("20260102000000", "second")]
