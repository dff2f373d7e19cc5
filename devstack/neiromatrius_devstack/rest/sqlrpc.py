"""Calling a function: pick the overload like PostgREST, then call it with named arguments.

Arguments travel as one JSON parameter and ``json_to_record`` types them with the declared
parameter types (``fn("a" := pgrst_body."a")``), PostgREST's ``callPlanToQuery``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from .catalog import Catalog, Function
from .errors import RestError
from .sqlfrag import Params, ident, qualified


def find_function(
    catalog: Catalog, schema: str, name: str, keys: Sequence[str], *, is_post: bool, single_object: bool = False
) -> Function:
    """The overload whose parameters fit the argument names; ``single_object``: one json/jsonb parameter."""
    overloads = catalog.functions.get((schema, name), [])
    given = frozenset(keys)
    if single_object:
        matches = [fn for fn in overloads if len(fn.params) == 1 and fn.params[0].type in ("json", "jsonb")]
    else:
        matches = [fn for fn in overloads if not fn.single_json_param and _accepts(fn, given)]
    if not matches and is_post:
        matches = [fn for fn in overloads if fn.single_json_param]
    if len(matches) == 1:
        return matches[0]
    if matches:
        signatures = ", ".join(
            f"{fn.schema}.{fn.name}(" + ", ".join(f"{p.name} => {p.type}" for p in fn.params) + ")" for fn in matches
        )
        hint = (
            "Try renaming the parameters or the function itself in the database so function overloading can be resolved"
        )
        raise RestError(
            300, "PGRST203", f"Could not choose the best candidate function between: {signatures}", None, hint
        )
    raise _not_found(catalog, schema, name, sorted(given), is_post)


def _accepts(fn: Function, given: frozenset[str]) -> bool:
    names = frozenset(p.name for p in fn.params)
    return fn.required <= given <= names


def _not_found(catalog: Catalog, schema: str, name: str, keys: list[str], is_post: bool) -> RestError:
    func = f"{schema}.{name}"
    listed = ", ".join(keys)
    message = f"Could not find the function {func}" + (f"({listed})" if keys else " without parameters")
    searched = (f" with parameter{'s' if len(keys) > 1 else ''} {listed}") if keys else " without parameters"
    if is_post:
        searched += " or with a single unnamed json/jsonb parameter"
    names = sorted({n for (s, n) in catalog.functions if s == schema})
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    hint = f"Perhaps you meant to call the function {schema}.{close[0]}" if close and close[0] != name else None
    return RestError(
        404, "PGRST202", message + " in the schema cache",
        f"Searched for the function {func}{searched}, but no matches were found in the schema cache.", hint,
    )  # fmt: skip


@dataclass(frozen=True)
class Call:
    """The overload an RPC resolves to and its ``pgrst_source`` SQL; ``takes_body``: the SQL's ``$1`` is the
    arguments' JSON text."""

    fn: Function
    source: str
    takes_body: bool


def resolve_call(
    catalog: Catalog, schema: str, name: str, keys: Sequence[str], *, is_post: bool, single_object: bool
) -> Call:
    """:func:`find_function` then :func:`call_source`, remembered per catalogue: both depend only on it
    and on the set of argument names (the values travel as the statement's first parameter)."""
    key = ("rpc", schema, name, frozenset(keys), is_post, single_object)
    call = catalog.derived.get(key)
    if not isinstance(call, Call):
        fn = find_function(catalog, schema, name, keys, is_post=is_post, single_object=single_object)
        params = Params()
        source = call_source(fn, keys, "", params, single_object=single_object)
        call = Call(fn, source, bool(params.values))
        catalog.derived[key] = call
    return call


def call_source(fn: Function, keys: Sequence[str], text: str, params: Params, *, single_object: bool = False) -> str:
    """The ``pgrst_source`` CTE body: every row (or the scalar) the function returns."""
    target = qualified(fn.schema, fn.name)
    whole_body = single_object or (fn.single_json_param and not (keys and _accepts(fn, frozenset(keys))))
    body = params.text(text) if keys or whole_body else ""
    record = ""
    if whole_body:
        call = f"{target}({body}::{fn.params[0].type})"
    elif keys:
        wanted = set(keys)
        chosen = [p for p in fn.params if p.name in wanted]
        typed = ", ".join(f"{ident(p.name)} {p.type}" for p in chosen)
        args = ", ".join(
            f"{'VARIADIC ' if p.variadic else ''}{ident(p.name)} := pgrst_body.{ident(p.name)}" for p in chosen
        )
        call, record = f"{target}({args})", f"json_to_record({body}::json) AS pgrst_body({typed})"
    else:
        call = f"{target}()"
    if fn.shape == "composite":
        items = [record, f"LATERAL {call} AS pgrst_call"] if record else [f"{call} AS pgrst_call"]
        return "SELECT pgrst_call.* FROM " + ", ".join(items)
    return f"SELECT {call} AS pgrst_scalar" + (f" FROM {record}" if record else "")
