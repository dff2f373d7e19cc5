"""The ``select=`` and ``order=`` grammars: columns, aliases, casts, JSON paths, embeds, spreads."""

from __future__ import annotations

import re
from typing import Literal

from .errors import RestError
from .grammar import Cursor, field, field_name, identifier, json_path
from .model import Field, OrderTerm, SelectEmbed, SelectField, SelectItem

_AGGREGATE = re.compile(r"\.(sum|avg|min|max|count)\(\)")


def aggregates_not_allowed() -> RestError:
    return RestError(400, "PGRST123", "Use of aggregate functions is not allowed")


def parse_select(text: str) -> tuple[SelectItem, ...]:
    cur = Cursor(text, "select parameter")
    items = _forest(cur)
    cur.end()
    return items


def _forest(cur: Cursor) -> tuple[SelectItem, ...]:
    items = [_item(cur)]
    while cur.eat_lexeme(","):
        items.append(_item(cur))
    return tuple(items)


def _item(cur: Cursor) -> SelectItem:
    cur.skip_spaces()
    if cur.eat("..."):
        name = field_name(cur)
        hint, join = _embed_params(cur)
        return SelectEmbed(name, _children(cur), None, hint, join, spread=True)
    if cur.eat("*"):
        _field_end(cur)
        return SelectField(Field("*"))
    first = field_name(cur)
    alias = None
    name = first
    if cur.at(":") and not cur.at("::"):
        cur.pos += 1
        alias, name = first, field_name(cur)
    if name == "count" and cur.eat("()"):
        # ``count()``: whether aggregates are allowed is the plan's decision (db-aggregates-enabled).
        result_cast = identifier(cur) if cur.eat("::") else None
        _field_end(cur)
        return SelectField(Field("*"), alias, None, "count", result_cast)
    if cur.peek() in ("!", "("):
        hint, join = _embed_params(cur)
        return SelectEmbed(name, _children(cur), alias, hint, join)
    path = json_path(cur)
    cast = None
    if cur.eat("::"):
        cast = identifier(cur)
    aggregate = _AGGREGATE.match(cur.text, cur.pos)
    if aggregate is None:
        _field_end(cur)
        return SelectField(Field(name, path), alias, cast)
    cur.pos = aggregate.end()
    result_cast = identifier(cur) if cur.eat("::") else None
    _field_end(cur)
    return SelectField(Field(name, path), alias, cast, aggregate.group(1), result_cast)


def _field_end(cur: Cursor) -> None:
    cur.skip_spaces()
    if not (cur.done() or cur.peek() in (",", ")")):
        raise cur.fail('"->>", "->", "::", ")", "," or end of input')


def _embed_params(cur: Cursor) -> tuple[str | None, Literal["inner", "left"] | None]:
    hint: str | None = None
    join: Literal["inner", "left"] | None = None
    for _ in range(2):
        if not cur.eat("!"):
            break
        if cur.eat("inner"):
            join = "inner"
        elif cur.eat("left"):
            join = "left"
        else:
            hint = field_name(cur)
    return hint, join


def _children(cur: Cursor) -> tuple[SelectItem, ...]:
    if not cur.eat("("):
        raise cur.fail('"("')
    if cur.eat_lexeme(")"):
        return ()
    children = _forest(cur)
    if not cur.eat_lexeme(")"):
        raise cur.fail('")"')
    return children


def parse_order(text: str) -> tuple[OrderTerm, ...]:
    cur = Cursor(text, "order")
    terms = [_order_term(cur)]
    while cur.eat_lexeme(","):
        terms.append(_order_term(cur))
    cur.end()
    return tuple(terms)


def _order_term(cur: Cursor) -> OrderTerm:
    name = field_name(cur)
    relation = None
    if cur.eat("("):
        relation, target = name, field(cur)
        cur.expect(")")
    else:
        target = Field(name, json_path(cur))
    direction: Literal["asc", "desc"] | None = None
    nulls: Literal["first", "last"] | None = None
    if cur.eat(".asc"):
        direction = "asc"
    elif cur.eat(".desc"):
        direction = "desc"
    if cur.eat(".nullsfirst"):
        nulls = "first"
    elif cur.eat(".nullslast"):
        nulls = "last"
    cur.skip_spaces()
    if not (cur.done() or cur.peek() == ","):
        expecting = '"asc", "desc", "nullsfirst" or "nullslast"' if cur.peek() == "." else '"," or end of input'
        raise cur.fail(expecting)
    return OrderTerm(target, relation, direction, nulls)
