"""One line of the checklist, and the two ways it is printed: for people and as JSON for machines."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """``name`` is stable (``DATABASE_URL``, ``Database``, ``Redis``, …); ``variable`` is the setting to fix."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    variable: str | None = None

    @classmethod
    def passed(cls, name: str, detail: str, variable: str | None = None) -> Check:
        return cls(name, True, detail, "", variable)

    @classmethod
    def failed(cls, name: str, detail: str, fix: str, variable: str | None = None) -> Check:
        return cls(name, False, detail, fix, variable)

    @classmethod
    def skipped(cls, name: str, needs: str, variable: str | None = None, fix: str | None = None) -> Check:
        """A check that cannot run: it counts as failed, so the line and the exit status both say so."""
        return cls(name, False, f"skipped: needs {needs}", fix or f"fix {needs} first", variable)

    def line(self) -> str:
        if self.ok:
            return f"✅ {self.name} {self.detail}"
        lead = self.name if self.variable in (None, self.name) else f"{self.name} ({self.variable})"
        return f"❌ {lead}: {self.detail} — fix: {self.fix}"


def all_ok(checks: list[Check]) -> bool:
    return all(check.ok for check in checks)


def render_text(checks: list[Check]) -> str:
    return "\n".join(check.line() for check in checks)


def render_json(checks: list[Check]) -> str:
    """``{"ok": bool, "checks": [{"name", "ok", "detail", "fix", "variable"}]}``; ``variable`` may be null."""
    body: dict[str, Any] = {"ok": all_ok(checks), "checks": [asdict(check) for check in checks]}
    return json.dumps(body, ensure_ascii=False, indent=2)
