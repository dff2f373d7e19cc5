"""Filter values and logic trees: ``[not.]op[(any|all)|(lang)].value`` and ``or=(…)`` (QueryParams.hs)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from .errors import RestError, parse_error
from .grammar import Cursor, field, identifier, quoted
from .model import Condition, Filter, Logic, OpExpr

#: Operators that take one value, with their SQL spelling.
OPERATORS = {
    "eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=",
    "like": "LIKE", "ilike": "ILIKE", "match": "~", "imatch": "~*",
    "cs": "@>", "cd": "<@", "ov": "&&", "sl": "<<", "sr": ">>", "nxr": "&<", "nxl": "&>", "adj": "-|-",
    "isdistinct": "IS DISTINCT FROM",
}  # fmt: skip
FTS_OPERATORS = {
    "fts": "to_tsquery",
    "plfts": "plainto_tsquery",
    "phfts": "phraseto_tsquery",
    "wfts": "websearch_to_tsquery",
}
QUANTIFIABLE = frozenset({"eq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"})
IS_VALUES = {"null": "NULL", "not_null": "NOT NULL", "true": "TRUE", "false": "FALSE", "unknown": "UNKNOWN"}

_WORD = re.compile(r"[a-z_]+")
_OPERATOR_EXPECTED = '"not" or operator (eq, gt, ...)'


def list_value(cur: Cursor) -> tuple[str, ...]:
    """``(a,"b,c",d)`` for ``in``."""
    if not cur.eat_lexeme("("):
        raise cur.fail('"("')
    items = [_list_element(cur)]
    while cur.eat(","):
        items.append(_list_element(cur))
    if not cur.eat_lexeme(")"):
        raise cur.fail('")"')
    return tuple(items)


def _list_element(cur: Cursor) -> str:
    if cur.peek() == '"':
        start = cur.pos
        text = quoted(cur)
        if cur.peek() in (",", ")"):
            return text
        cur.pos = start
    return _until(cur, ",)")


def _until(cur: Cursor, stops: str) -> str:
    start = cur.pos
    while cur.peek() and cur.peek() not in stops:
        cur.pos += 1
    return cur.text[start : cur.pos]


def rest_value(cur: Cursor) -> str:
    value = cur.text[cur.pos :]
    cur.pos = len(cur.text)
    return value


def logic_value(cur: Cursor) -> str:
    """A value inside ``or=(…)``: ``"quoted"``, a ``{pg,array}``, or text up to ``,`` or ``)``."""
    if cur.peek() == '"':
        start = cur.pos
        text = quoted(cur)
        if cur.peek() in (",", ")", ""):
            return text
        cur.pos = start
    if cur.peek() == "{":
        end = cur.text.find("}", cur.pos)
        if end != -1 and "{" not in cur.text[cur.pos + 1 : end]:
            value = cur.text[cur.pos : end + 1]
            cur.pos = end + 1
            return value
    return _until(cur, ",)")


def op_expr(cur: Cursor, value: Callable[[Cursor], str]) -> OpExpr:
    negated = cur.eat("not.")
    if cur.eat("in."):
        return OpExpr("in", list_value(cur), negated)
    if cur.eat("is."):
        for word, _sql in IS_VALUES.items():
            if cur.text[cur.pos : cur.pos + len(word)].lower() == word:
                cur.pos += len(word)
                return OpExpr("is", word, negated)
        raise cur.fail("null or trilean value (unknown, true, false)")
    match = _WORD.match(cur.text, cur.pos)
    name = match.group() if match else ""
    if name in FTS_OPERATORS:
        cur.pos += len(name)
        language = None
        if cur.eat("("):
            language = identifier(cur)
            cur.expect(")")
        cur.expect(".")
        return OpExpr(name, value(cur), negated, language=language)
    if name in OPERATORS:
        cur.pos += len(name)
        quantifier: Literal["any", "all"] | None = None
        if name in QUANTIFIABLE and cur.eat("(any)"):
            quantifier = "any"
        elif name in QUANTIFIABLE and cur.eat("(all)"):
            quantifier = "all"
        cur.expect(".")
        return OpExpr(name, value(cur), negated, quantifier)
    dot = cur.text.find(".", cur.pos)
    if dot != -1 and match is not None:
        raise parse_error(cur.what, cur.text, dot + 2, f"unknown single value operator {cur.text[cur.pos : dot]}")
    raise cur.fail(_OPERATOR_EXPECTED)


def filter_expr(value: str) -> OpExpr:
    """The value of a top-level filter parameter, e.g. ``not.in.(1,2)``."""
    cur = Cursor(value, "filter")
    expr = op_expr(cur, rest_value)
    cur.end()
    return expr


def logic_tree(text: str) -> Logic:
    """``or(a.eq.1,and(b.gt.2,c.is.null))``: the parameter's operator joined to its value."""
    cur = Cursor(text, "logic tree")
    tree = _logic(cur)
    cur.skip_spaces()
    cur.end()
    return tree


def _logic(cur: Cursor) -> Logic:
    negated = cur.eat("not.")
    op: Literal["and", "or"]
    if cur.eat("and"):
        op = "and"
    elif cur.eat("or"):
        op = "or"
    else:
        raise cur.fail("logic operator (and, or)")
    if not cur.eat_lexeme("("):
        raise cur.fail('"("')
    children = [_logic_item(cur)]
    while cur.eat_lexeme(","):
        children.append(_logic_item(cur))
    if not cur.eat_lexeme(")"):
        raise cur.fail('")"')
    return Logic(op, tuple(children), negated)


def _logic_item(cur: Cursor) -> Condition:
    start = cur.pos
    try:
        target = field(cur)
        cur.expect(".")
        return Filter(target, op_expr(cur, logic_value))
    except RestError:
        cur.pos = start
    if not (cur.at("and") or cur.at("or") or cur.at("not.and") or cur.at("not.or")):
        raise cur.fail("field name (* or [a..z0..9_$]), negation operator (not) or logic operator (and, or)")
    return _logic(cur)
