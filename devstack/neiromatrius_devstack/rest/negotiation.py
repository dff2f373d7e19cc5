"""Content negotiation: the response media type from ``Accept``, the schema from the profile headers."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .errors import RestError


class Media(Enum):
    JSON = "application/json"
    OBJECT = "application/vnd.pgrst.object+json"
    CSV = "text/csv"
    PLAN = "application/vnd.pgrst.plan"


#: ``options=`` of the plan media type, as EXPLAIN spells them (MediaType.hs ``ExplainOption``).
PLAN_OPTIONS = ("analyze", "verbose", "settings", "buffers", "wal")


@dataclass(frozen=True)
class MediaChoice:
    media: Media
    strip_nulls: bool = False
    plan_format: str = "json"  # ``+json`` or ``+text``
    plan_for: str = "application/json"
    plan_options: tuple[str, ...] = ()

    @property
    def singular(self) -> bool:
        return self.media is Media.OBJECT

    @property
    def content_type(self) -> str:
        if self.media is Media.PLAN:  # MediaType.hs ``toMime (MTVndPlan mt fmt opts)``
            options = f"; options={'|'.join(self.plan_options)}" if self.plan_options else ""
            return f'application/vnd.pgrst.plan+{self.plan_format}; for="{self.plan_for}"{options}; charset=utf-8'
        if self.media is Media.CSV:
            return "text/csv; charset=utf-8"
        if self.strip_nulls:
            base = "application/vnd.pgrst.object+json" if self.singular else "application/vnd.pgrst.array+json"
            return f"{base};nulls=stripped; charset=utf-8"
        return f"{self.media.value}; charset=utf-8"


_DEFAULT = MediaChoice(Media.JSON)
_PLAIN = {
    "*/*": _DEFAULT,
    "application/*": _DEFAULT,
    "application/json": _DEFAULT,
    "application/vnd.pgrst.array+json": _DEFAULT,
    "application/vnd.pgrst.object+json": MediaChoice(Media.OBJECT),
    "application/vnd.pgrst.object": MediaChoice(Media.OBJECT),
    "text/csv": MediaChoice(Media.CSV),
}


def negotiate_media(accept: str | None, *, plan: bool = False) -> MediaChoice:
    """The first acceptable type by quality, else 406 PGRST107 (like PostgREST's ``negotiateContent``).

    The plan media type exists only with ``db-plan-enabled``; otherwise it is one more unknown type.
    """
    if not accept or not accept.strip():
        return _DEFAULT
    ranges: list[tuple[float, int, str, dict[str, str]]] = []
    for position, part in enumerate(accept.split(",")):
        name, *raw_params = (p.strip() for p in part.split(";"))
        params = dict(p.partition("=")[::2] for p in raw_params if "=" in p)
        try:
            quality = float(params.pop("q", "1"))
        except ValueError:
            quality = 1.0
        ranges.append((-quality, position, name.lower(), params))
    for _q, _pos, name, params in sorted(ranges):
        if plan and name in _PLAN_TYPES:
            return _plan_choice(name, params)
        choice = _PLAIN.get(name)
        if choice is None:
            continue
        if params.get("nulls") == "stripped" and name.startswith("application/vnd.pgrst."):
            return MediaChoice(choice.media, strip_nulls=True)
        return choice
    raise RestError(406, "PGRST107", "None of these media types are available: " + ", ".join(r[2] for r in ranges))


_PLAN_TYPES = {
    "application/vnd.pgrst.plan": "text",
    "application/vnd.pgrst.plan+text": "text",
    "application/vnd.pgrst.plan+json": "json",
}


def _plan_choice(name: str, params: dict[str, str]) -> MediaChoice:
    target = params.get("for", "application/json").strip('"') or "application/json"
    options = tuple(o for o in params.get("options", "").strip('"').split("|") if o in PLAN_OPTIONS)
    return MediaChoice(Media.PLAN, plan_format=_PLAN_TYPES[name], plan_for=target, plan_options=options)


def choose_schema(method: str, headers: dict[str, str], schemas: tuple[str, ...]) -> tuple[str, bool]:
    """The request's schema and whether a profile picked it (then the answer echoes ``Content-Profile``)."""
    name = "content-profile" if method in ("POST", "PATCH", "PUT", "DELETE") else "accept-profile"
    profile = headers.get(name)
    if profile is None:
        return schemas[0], len(schemas) > 1
    if profile not in schemas:
        raise RestError(406, "PGRST106", "The schema must be one of the following: " + ", ".join(schemas))
    return profile, True
