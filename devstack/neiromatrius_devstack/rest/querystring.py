"""Split a query string into PostgREST's parts: select, filters, logic, order, ranges, arguments."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote

from .errors import RestError
from .filter_grammar import FTS_OPERATORS, OPERATORS, filter_expr, logic_tree
from .grammar import names_list, tree_path
from .model import EmbedPath, Filter, QueryParams, Range
from .select_grammar import parse_order, parse_select

RESERVED = frozenset({"select", "columns", "on_conflict"})
EMBEDDABLE = frozenset({"order", "limit", "offset", "and", "or"})


def parse_query(raw: str) -> QueryParams:
    """Parse the raw (still URL-encoded) query string; ``+`` means a space, as in PostgREST."""
    pairs = [(k, v) for k, v in parse_qsl(raw, keep_blank_values=True) if k != "apikey"]
    params = QueryParams(canonical=canonical(pairs))
    limits: dict[EmbedPath, int | None] = {}
    offsets: dict[EmbedPath, int] = {}
    for key, value in pairs:
        last = key.rsplit(".", 1)[-1]
        if key == "select":
            params.select = parse_select(value)
            params.has_select = True
        elif key == "columns":
            params.columns = names_list(value, "columns parameter")
        elif key == "on_conflict":
            params.on_conflict = names_list(value, "on_conflict parameter")
        elif last == "order":
            params.orders[_embed_path(key)] = list(parse_order(value))
        elif last == "limit":
            limits[_embed_path(key)] = _integer(value)
        elif last == "offset":
            offsets[_embed_path(key)] = max(_integer(value) or 0, 0)
        elif last in ("and", "or"):
            path, op = _logic_path(key)
            params.filters.setdefault(path, []).append(logic_tree(op + value))
        elif "." in key or _has_operator(value):
            path, target = tree_path(key)
            params.filters.setdefault(path, []).append(Filter(target, filter_expr(value)))
        else:
            params.rpc_args.append((key, value))
    for path in limits.keys() | offsets.keys():
        limit = limits.get(path)
        if limit is not None and limit < 0:
            raise RestError(
                416, "PGRST103", "Requested range not satisfiable", "Limit should be greater than or equal to zero."
            )
        params.ranges[path] = Range(offsets.get(path, 0), limit)
    return params


def canonical(pairs: list[tuple[str, str]]) -> str:
    """The sorted query PostgREST echoes in ``Content-Location``."""
    ordered = sorted(pairs, key=lambda kv: kv[0])
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in ordered)


def _integer(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None  # PostgREST ignores a limit or offset it cannot read


def _embed_path(key: str) -> EmbedPath:
    return tuple(key.split(".")[:-1])


def _logic_path(key: str) -> tuple[EmbedPath, str]:
    names = key.split(".")
    negated = "not" in names[:-1]
    path = tuple(n for n in names[:-1] if n != "not")
    return path, ("not." if negated else "") + names[-1]


def _has_operator(value: str) -> bool:
    """PostgREST's test for "this is a filter, not an RPC argument"."""
    parts = value.split(".")
    if parts[0] == "not" and len(parts) > 1:
        return True
    if parts[0] in ("is", "in") and len(parts) > 1:
        return True
    head = parts[0].split("(")[0]
    return parts[0] in OPERATORS or parts[0] in FTS_OPERATORS or head in FTS_OPERATORS or head in OPERATORS


def reject_rpc_args(params: QueryParams) -> None:
    """On a table, ``col=value`` without an operator is a malformed filter."""
    if params.rpc_args:
        key, value = params.rpc_args[0]
        tree_path(key)
        filter_expr(value)
