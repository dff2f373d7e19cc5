"""SELECT statements for reads and representations: columns, embeds as lateral joins, filters, order.

Shape, per embed (PostgREST v12 uses the same lateral-join plan):

* to-one:  ``LEFT JOIN LATERAL (SELECT row_to_json(e) AS pgrst_json, e.* FROM (<child>) e) AS lat ON TRUE``
* to-many: ``LEFT JOIN LATERAL (SELECT json_agg(e) AS pgrst_json FROM (<child>) e) AS lat ON TRUE``

``!inner`` turns the join into INNER (to-many: ``ON lat.pgrst_json IS NOT NULL``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from .catalog import Catalog, Relation
from .errors import RestError
from .model import Condition, EmbedPath, Filter, OrderTerm, QueryParams, Range, SelectEmbed, SelectField, SelectItem
from .relationships import Relationship, resolve
from .select_grammar import aggregates_not_allowed
from .sqlfrag import Params, Scope, check_cast, ident, qualified, render_condition, render_field, render_order


@dataclass(frozen=True)
class Source:
    """What a level reads from: a FROM item, its alias, its columns' types and its catalogue entry."""

    sql: str
    alias: str
    types: Mapping[str, str]
    relation: Relation | None = None
    #: Spell ``*`` out as the relation's columns (the source carries extra bookkeeping columns).
    explicit_star: bool = False


@dataclass
class Level:
    columns: list[str] = field(default_factory=list)
    joins: list[str] = field(default_factory=list)
    count_joins: list[str] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    order: str = ""
    group: list[str] = field(default_factory=list)

    def from_clause(self, source: Source, *, count_only: bool = False, junction: str = "") -> str:
        """``source AS alias [JOIN junction] [lateral joins] [WHERE …] [GROUP BY …]`` (counts skip the grouping)."""
        joins = self.count_joins if count_only else self.joins
        where = f" WHERE {' AND '.join(self.where)}" if self.where else ""
        group = f" GROUP BY {', '.join(self.group)}" if self.group and not count_only else ""
        return f"{source.sql} AS {ident(source.alias)}{junction}{''.join(' ' + j for j in joins)}{where}{group}"


@dataclass(frozen=True)
class _Embed:
    item: SelectEmbed
    rel: Relationship
    lateral: str  # the lateral join's alias
    join: str
    value: str | None = None  # the JSON it adds to the row (none for a spread)
    column: int = -1  # where that value sits in the level's columns


def limit_offset(rng: Range) -> str:
    sql = ""
    if rng.limit is not None:
        sql += f" LIMIT {int(rng.limit)}"
    if rng.offset:
        sql += f" OFFSET {int(rng.offset)}"
    return sql


class ReadBuilder:
    """Renders one request's select tree; embeds are resolved against the catalogue as it goes."""

    def __init__(
        self,
        catalog: Catalog,
        query: QueryParams,
        params: Params,
        *,
        root_filters: bool = True,
        aggregates: bool = False,
    ) -> None:
        self.catalog = catalog
        self.aggregates = aggregates
        self.query = query
        self.params = params
        # A write's root filters choose the rows to change; its representation is not filtered again.
        self.root_filters = root_filters
        self._numbers = itertools.count(1)

    def level(self, source: Source, items: tuple[SelectItem, ...], path: EmbedPath, link: list[str]) -> Level:
        scope = Scope(source.alias, source.types)
        out = Level(where=list(link))
        embeds: dict[str, _Embed] = {}
        for item in items:
            if isinstance(item, SelectEmbed):
                if item.label in embeds:
                    raise self._duplicate_embed(source, path, item.label)
                embed = self._embed(source, scope, item, path, out)
                embeds[item.label] = embed
            else:
                out.columns.extend(self._field(source, scope, item))
        out.group = self._grouping(source, scope, items)
        if out.group or any(isinstance(i, SelectField) and i.aggregate for i in items):
            self._group_embeds(out, embeds)
        if path or self.root_filters:
            out.where += [self._condition(cond, scope, embeds, out) for cond in self.query.conditions(path)]
        terms = self.query.orders.get(path)
        if terms:
            out.order = render_order(terms, scope, self.params, self._order_scopes(terms, embeds))
        return out

    def _duplicate_embed(self, source: Source, path: EmbedPath, label: str) -> RestError:
        """PostgREST v12 names each embed's lateral join ``<parent table>_<alias or name>_<depth>`` (Plan.hs
        ``aggAlias``); two embeds of one name under one parent collide there, and PostgreSQL refuses the
        statement (42712, answered 400)."""
        parent = source.relation.name if source.relation is not None else source.alias
        return RestError(400, "42712", f'table name "{parent}_{label}_{len(path) + 1}" specified more than once')

    def _grouping(self, source: Source, scope: Scope, items: tuple[SelectItem, ...]) -> list[str]:
        """With an aggregate in ``select`` (db-aggregates-enabled), every other column groups the rows."""
        fields = [i for i in items if isinstance(i, SelectField)]
        if not any(f.aggregate for f in fields):
            return []
        if not self.aggregates:
            raise aggregates_not_allowed()
        group: list[str] = []
        for item in fields:
            if item.aggregate:
                continue
            if item.field.name == "*":
                names = source.relation.columns if source.relation is not None else source.types
                group += [f"{scope.quoted}.{ident(c)}" for c in names]
            else:
                sql, _ = render_field(scope, item.field, self.params)
                group.append(f"CAST({sql} AS {check_cast(item.cast)})" if item.cast else sql)
        return group

    @staticmethod
    def _group_embeds(out: Level, embeds: Mapping[str, _Embed]) -> None:
        """Beside an aggregate, an embedded resource groups the rows too. ``json`` has no equality, so the
        grouping is on its text, and the column is that same text read back as JSON (unchanged)."""
        for embed in embeds.values():
            if embed.value is None:
                continue
            text = f"({embed.value})::text"
            out.group.append(text)
            out.columns[embed.column] = f"({text})::json AS {ident(embed.item.label)}"

    def _aggregate(self, scope: Scope, item: SelectField) -> list[str]:
        assert item.aggregate is not None
        if item.field.name == "*":
            sql = "pg_catalog.count(*)"
        else:
            arg, _ = render_field(scope, item.field, self.params)
            if item.cast:
                arg = f"CAST({arg} AS {check_cast(item.cast)})"
            sql = f"pg_catalog.{item.aggregate}({arg})"
        if item.aggregate_cast:
            sql = f"CAST({sql} AS {check_cast(item.aggregate_cast)})"
        return [f"{sql} AS {ident(item.alias or item.aggregate)}"]

    def _field(self, source: Source, scope: Scope, item: SelectField) -> list[str]:
        if item.aggregate:
            return self._aggregate(scope, item)
        if item.field.name == "*":
            if source.explicit_star and source.relation is not None:
                return [f"{scope.quoted}.{ident(c)}" for c in source.relation.columns]
            return [f"{scope.quoted}.*"]
        sql, _ = render_field(scope, item.field, self.params)
        if item.cast:
            sql = f"CAST({sql} AS {check_cast(item.cast)})"
        return [f"{sql} AS {ident(item.alias or item.field.output_name)}"]

    def _condition(self, cond: Condition, scope: Scope, embeds: Mapping[str, _Embed], out: Level) -> str:
        if isinstance(cond, Filter) and cond.field.name in embeds and not cond.field.path:
            expr = cond.expr
            if expr.op != "is" or expr.value not in ("null", "not_null"):
                raise RestError(
                    400, "PGRST120", f"Bad operator on the '{cond.field.name}' embedded resource",
                    "Only is null or not is null filters are allowed on embedded resources",
                )  # fmt: skip
            is_null = (expr.value == "null") != expr.negated
            embed = embeds[cond.field.name]
            if embed.join not in out.count_joins:
                out.count_joins.append(embed.join)  # the count must see the join the filter reads
            return f"{ident(embed.lateral)}.pgrst_json IS {'' if is_null else 'NOT '}NULL"
        return render_condition(cond, scope, self.params)

    def _order_scopes(self, terms: list[OrderTerm], embeds: Mapping[str, _Embed]) -> dict[str, Scope]:
        """Related orders (``order=rel(col)``) may only name to-one embeds."""
        for term in terms:
            embed = embeds.get(term.relation) if term.relation else None
            if embed is not None and not embed.rel.to_one:
                raise RestError(
                    400,
                    "PGRST118",
                    f"A related order on '{term.relation}' is not possible",
                    f"'{embed.rel.source.name}' and '{term.relation}' do not form a many-to-one or one-to-one "
                    "relationship",
                )
        return {label: Scope(e.lateral, {}) for label, e in embeds.items() if e.rel.to_one}

    def _embed(self, source: Source, scope: Scope, item: SelectEmbed, path: EmbedPath, out: Level) -> _Embed:
        if source.relation is None:
            raise RestError(
                400, "PGRST200",
                f"Could not find a relationship between '{source.alias}' and '{item.relation}' in the schema cache",
                f"Searched for a foreign key relationship between '{source.alias}' and '{item.relation}' in the "
                "schema cache, but no matches were found.",
            )  # fmt: skip
        rel = resolve(self.catalog, source.relation, item.relation, item.hint)
        if item.spread and not rel.to_one:
            raise RestError(
                400, "PGRST119", f"A spread operation on '{item.relation}' is not possible",
                f"'{rel.source.name}' and '{item.relation}' do not form a many-to-one or one-to-one relationship",
            )  # fmt: skip
        number = next(self._numbers)
        alias = f"{rel.target.name}_{number}"
        lateral = f"{source.alias}_{alias}"
        child_sql = self._child_select(rel, alias, item, (*path, item.label), scope)
        e = '"pgrst_e"'
        if not rel.to_one:
            body = f"SELECT json_agg({e}) AS pgrst_json FROM ({child_sql}) AS {e}"
        elif item.spread:
            body = f"SELECT {e}.* FROM ({child_sql}) AS {e}"
        else:
            body = f"SELECT row_to_json({e}) AS pgrst_json, {e}.* FROM ({child_sql}) AS {e}"
        inner = item.join == "inner"
        on = f"{ident(lateral)}.pgrst_json IS NOT NULL" if inner and not rel.to_one else "TRUE"
        join = f"{'INNER' if inner else 'LEFT'} JOIN LATERAL ({body}) AS {ident(lateral)} ON {on}"
        out.joins.append(join)
        if inner:
            out.count_joins.append(join)
        if item.spread:
            out.columns.append(f"{ident(lateral)}.*")
        elif item.children:
            value = f"{ident(lateral)}.pgrst_json"
            if not rel.to_one:
                value = "COALESCE(" + value + ", '[]')"
            out.columns.append(f"{value} AS {ident(item.label)}")
            return _Embed(item, rel, lateral, join, value, len(out.columns) - 1)
        return _Embed(item, rel, lateral, join)

    def _child_select(self, rel: Relationship, alias: str, item: SelectEmbed, path: EmbedPath, parent: Scope) -> str:
        target = rel.target
        source = Source(qualified(target.schema, target.name), alias, target.filter_types, target)
        link: list[str] = []
        extra_from = ""
        if rel.junction is not None:
            j = rel.junction
            j_alias = ident(f"{j.relation.name}_{next(self._numbers)}")
            on = " AND ".join(
                f"{j_alias}.{ident(jc)} = {ident(alias)}.{ident(tc)}"
                for jc, tc in zip(j.to_target.columns, j.to_target.target_columns, strict=True)
            )
            extra_from = f" JOIN {qualified(j.relation.schema, j.relation.name)} AS {j_alias} ON {on}"
            link = [
                f"{j_alias}.{ident(jc)} = {parent.quoted}.{ident(pc)}"
                for jc, pc in zip(j.to_source.columns, j.to_source.target_columns, strict=True)
            ]
        else:
            link = [f"{ident(alias)}.{ident(child)} = {parent.quoted}.{ident(par)}" for par, child in rel.pairs]
        level = self.level(source, item.children, path, link)
        cols = ", ".join(level.columns)
        from_clause = level.from_clause(source, junction=extra_from)
        order = f" ORDER BY {level.order}" if level.order else ""
        return f"SELECT {cols} FROM {from_clause}{order}{limit_offset(self.query.range(path))}"
