"""Presence of one topic, in Phoenix.Presence's wire shapes (``presence_state``, ``presence_diff``)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

Metas = dict[str, dict[str, list[dict[str, Any]]]]  # key -> {"metas": [...]}


def _phx_ref() -> str:
    return secrets.token_urlsafe(12)


@dataclass
class Presence:
    """Who is tracked on a topic: one meta per tracking channel, grouped by presence key."""

    _tracked: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # channel id -> (key, meta)

    def state(self) -> Metas:
        out: Metas = {}
        for key, meta in self._tracked.values():
            out.setdefault(key, {"metas": []})["metas"].append(meta)
        return out

    def track(self, owner: int, key: str, payload: dict[str, Any]) -> dict[str, Metas]:
        """Track (or re-track) ``owner`` under ``key``; returns the diff to broadcast."""
        previous = self._tracked.get(owner)
        meta: dict[str, Any] = {**payload, "phx_ref": _phx_ref()}
        leaves: Metas = {}
        if previous is not None:
            meta["phx_ref_prev"] = previous[1]["phx_ref"]
            leaves = {previous[0]: {"metas": [previous[1]]}}
        self._tracked[owner] = (key, meta)
        return {"joins": {key: {"metas": [meta]}}, "leaves": leaves}

    def untrack(self, owner: int) -> dict[str, Metas] | None:
        previous = self._tracked.pop(owner, None)
        if previous is None:
            return None
        return {"joins": {}, "leaves": {previous[0]: {"metas": [previous[1]]}}}

    def __bool__(self) -> bool:
        return bool(self._tracked)
