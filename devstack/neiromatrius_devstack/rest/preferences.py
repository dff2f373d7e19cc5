"""The ``Prefer`` header as PostgREST v12 reads it, and the ``Preference-Applied`` it answers with."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import RestError

_CHOICES: dict[str, tuple[str, ...]] = {
    "resolution": ("merge-duplicates", "ignore-duplicates"),
    "missing": ("default", "null"),
    "return": ("representation", "minimal", "headers-only"),
    "params": ("single-object",),
    "count": ("exact", "planned", "estimated"),
    "tx": ("commit", "rollback"),
    "handling": ("strict", "lenient"),
}
#: The order PostgREST lists applied preferences in (Preferences.hs ``prefAppliedHeader``).
_APPLIED_ORDER = ("resolution", "missing", "return", "params", "count", "tx", "handling", "timezone", "max-affected")


@dataclass(frozen=True)
class Preferences:
    values: dict[str, str] = field(default_factory=dict)
    invalid: tuple[str, ...] = ()

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    @property
    def representation(self) -> str | None:
        return self.values.get("return")

    @property
    def count(self) -> bool:
        return "count" in self.values

    @property
    def strict(self) -> bool:
        return self.values.get("handling") == "strict"

    @property
    def max_affected(self) -> int | None:
        value = self.values.get("max-affected")
        return int(value) if value is not None and self.strict else None

    def applied(self, names: Iterable[str]) -> str | None:
        """The ``Preference-Applied`` value for the preferences this kind of request honours."""
        wanted = set(names)
        if not self.strict:
            wanted.discard("max-affected")
        parts = [f"{n}={self.values[n]}" for n in _APPLIED_ORDER if n in wanted and n in self.values]
        return ", ".join(parts) or None


def parse_preferences(headers: Iterable[str]) -> Preferences:
    """The first recognised value of each preference wins; the rest are invalid (400 only if strict)."""
    values: dict[str, str] = {}
    invalid: list[str] = []
    for header in headers:
        for raw in header.split(","):
            item = raw.strip()
            if not item:
                continue
            name, _, value = item.partition("=")
            if _accepted(name, value):
                values.setdefault(name, value)
            else:
                invalid.append(item)
    prefs = Preferences(values, tuple(invalid))
    if prefs.strict and prefs.invalid:
        raise RestError(
            400, "PGRST122", "Invalid preferences given with handling=strict",
            "Invalid preferences: " + ", ".join(prefs.invalid),
        )  # fmt: skip
    return prefs


def _accepted(name: str, value: str) -> bool:
    if name in _CHOICES:
        return value in _CHOICES[name]
    if name == "max-affected":
        return value.isdigit()
    return name == "timezone" and bool(value)
