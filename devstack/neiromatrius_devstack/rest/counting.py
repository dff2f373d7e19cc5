"""``Prefer: count=exact|planned|estimated`` the way PostgREST v12 computes the total (Query.hs ``resultSetWTotal``).

* ``exact``: ``count(*)`` of the filtered rows.
* ``planned``: the planner's ``Plan Rows`` for ``SELECT 1 FROM …`` with the same filters (``EXPLAIN``).
* ``estimated``: the exact count, cut at ``db-max-rows + 1``; past ``db-max-rows`` the larger of that
  and the planner's estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

from .preferences import Preferences


@dataclass(frozen=True)
class Counting:
    mode: str | None  # None when no count was asked for
    max_rows: int | None

    @classmethod
    def of(cls, prefs: Preferences, max_rows: int | None) -> Counting:
        return cls(prefs.get("count"), max_rows)

    def total_sql(self, from_clause: str) -> str:
        """The exact part, computed in the request's own statement."""
        if self.mode is None or self.mode == "planned":
            return "NULL::bigint"
        if self.mode == "estimated" and self.max_rows is not None:
            capped = f"SELECT 1 FROM {from_clause} LIMIT {int(self.max_rows) + 1}"
            return f"(SELECT pg_catalog.count(*) FROM ({capped}) AS pgrst_capped)"
        return f"(SELECT pg_catalog.count(*) FROM {from_clause})"

    def explain_sql(self, from_clause: str, n_params: int, with_sql: str = "") -> str | None:
        """What to ``EXPLAIN``; it names every parameter so the same arguments fit it."""
        if self.mode not in ("planned", "estimated"):
            return None
        refs = "".join(f", ${i}::text" for i in range(1, n_params + 1))
        return f"{with_sql}SELECT 1{refs} FROM {from_clause}"

    def total(self, counted: int | None, planned: int | None) -> int | None:
        if self.mode == "planned":
            return planned
        if self.mode == "estimated" and self.max_rows is not None and counted is not None and planned is not None:
            return max(counted, planned) if counted > self.max_rows else counted
        return counted
