"""The query-string grammar's building blocks: a cursor, names, JSON paths (QueryParams.hs).

A small hand-written recursive-descent parser over a :class:`Cursor`; errors are PGRST100 with
Parsec-style text, since clients only key on the code.
"""

from __future__ import annotations

import re
from typing import Literal

from .errors import RestError, parse_error
from .model import Field, JsonStep

_INDEX = re.compile(r"-?\d+")
_INDEX_END = ("->", "::", ".", ",", ")")


class Cursor:
    """A position in one parameter's text, and the PGRST100 error for it."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def at(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def eat(self, token: str) -> bool:
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def expect(self, token: str) -> None:
        if not self.eat(token):
            raise self.fail(f'"{token}"')

    def skip_spaces(self) -> None:
        while self.peek() in (" ", "\t") and self.peek():
            self.pos += 1

    def eat_lexeme(self, token: str) -> bool:
        start = self.pos
        self.skip_spaces()
        if self.eat(token):
            self.skip_spaces()
            return True
        self.pos = start
        return False

    def done(self) -> bool:
        return self.pos >= len(self.text)

    def end(self) -> None:
        if not self.done():
            raise self.fail("end of input")

    def fail(self, expecting: str, unexpected: str | None = None) -> RestError:
        if unexpected is None:
            unexpected = f'"{self.peek()}"' if self.peek() else "end of input"
        return parse_error(self.what, self.text, self.pos + 1, f"unexpected {unexpected} expecting {expecting}")


def _identifier_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_ $"


def quoted(cur: Cursor) -> str:
    cur.expect('"')
    out: list[str] = []
    while True:
        ch = cur.peek()
        if not ch:
            raise cur.fail('"\\"" (closing quote)')
        cur.pos += 1
        if ch == '"':
            return "".join(out)
        if ch == "\\" and not cur.done():
            ch = cur.peek()
            cur.pos += 1
        out.append(ch)


def field_name(cur: Cursor) -> str:
    """``name``, ``name with spaces``, ``dashed-name`` (but not ``->``) or ``"quoted"``."""
    cur.skip_spaces()
    if cur.peek() == '"':
        return quoted(cur)
    start = cur.pos
    while True:
        ch = cur.peek()
        if ch and _identifier_char(ch):
            cur.pos += 1
        elif (
            ch == "-" and cur.pos > start and not cur.at("->") and _identifier_char(cur.text[cur.pos + 1 : cur.pos + 2])
        ):
            cur.pos += 1
        else:
            break
    name = cur.text[start : cur.pos].strip()
    if not name:
        raise cur.fail("field name (* or [a..z0..9_$])")
    return name


def identifier(cur: Cursor) -> str:
    start = cur.pos
    while cur.peek() and _identifier_char(cur.peek()):
        cur.pos += 1
    name = cur.text[start : cur.pos].strip()
    if not name:
        raise cur.fail("letter or digit")
    return name


def json_path(cur: Cursor) -> tuple[JsonStep, ...]:
    steps: list[JsonStep] = []
    while True:
        arrow: Literal["->", "->>"]
        if cur.eat("->>"):
            arrow = "->>"
        elif cur.eat("->"):
            arrow = "->"
        else:
            return tuple(steps)
        match = _INDEX.match(cur.text, cur.pos)
        if match and (match.end() == len(cur.text) or cur.text.startswith(_INDEX_END, match.end())):
            steps.append(JsonStep(arrow, match.group(), index=True))
            cur.pos = match.end()
        else:
            steps.append(JsonStep(arrow, field_name(cur)))


def field(cur: Cursor) -> Field:
    name = field_name(cur)
    path = json_path(cur)
    cur.skip_spaces()
    return Field(name, path)


def tree_path(key: str) -> tuple[tuple[str, ...], Field]:
    """``a.b.col->x`` → embed path ``("a", "b")`` and the field ``col->x``."""
    cur = Cursor(key, "tree path")
    names = [field_name(cur)]
    while cur.eat("."):
        names.append(field_name(cur))
    path = json_path(cur)
    cur.end()
    return tuple(names[:-1]), Field(names[-1], path)


def names_list(text: str, what: str) -> tuple[str, ...]:
    """``columns=`` and ``on_conflict=``: names separated by commas, optionally double-quoted."""
    cur = Cursor(text, what)
    names = [field_name(cur)]
    while cur.eat_lexeme(","):
        names.append(field_name(cur))
    cur.end()
    return tuple(names)
