"""One API request, read from the HTTP request in PostgREST's order: JWT, schema, then the rest."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any

from .auth import Authenticator, Identity
from .errors import RestError
from .model import QueryParams, Range
from .negotiation import MediaChoice, choose_schema, negotiate_media
from .preferences import Preferences, parse_preferences
from .querystring import parse_query

_RANGE = re.compile(r"^\s*(?:items=)?(\d+)-(\d*)\s*$")


@dataclass
class ApiRequest:
    method: str
    path: str  # as PostgREST sees it, e.g. ``/todos`` or ``/rpc/add``
    target: str
    is_rpc: bool
    headers: dict[str, str]  # lower-cased names
    identity: Identity
    schema: str
    profile_negotiated: bool
    query: QueryParams
    prefs: Preferences
    media: MediaChoice
    header_range: Range
    body: bytes

    @property
    def read_only_method(self) -> bool:
        return self.method in ("GET", "HEAD")

    def top_range(self, max_rows: int | None) -> Range:
        """The query's ``limit``/``offset`` meet the ``Range`` header (GET only), then ``db-max-rows``."""
        rng = self.query.range().intersect(self.header_range) if self.read_only_method else self.query.range()
        return rng.capped(max_rows) if max_rows is not None else rng

    def headers_json(self) -> str:
        visible = {k: v for k, v in self.headers.items() if k != "cookie"}
        return json.dumps(visible, ensure_ascii=False, separators=(",", ":"))

    def cookies_json(self) -> str:
        jar: dict[str, Any] = {}
        raw = self.headers.get("cookie")
        if raw:
            try:
                parsed: SimpleCookie = SimpleCookie(raw)
            except CookieError:
                parsed = SimpleCookie()
            jar = {name: morsel.value for name, morsel in parsed.items()}
        return json.dumps(jar, ensure_ascii=False, separators=(",", ":"))


def parse_range_header(value: str | None) -> Range:
    if not value:
        return Range()
    match = _RANGE.match(value)
    if match is None:
        return Range()  # PostgREST ignores a Range header it cannot read
    lower = int(match.group(1))
    if not match.group(2):
        return Range(lower, None)
    upper = int(match.group(2))
    if upper < lower:
        raise RestError(
            416, "PGRST103", "Requested range not satisfiable",
            "The lower boundary must be lower than or equal to the upper boundary in the Range header.",
        )  # fmt: skip
    return Range(lower, upper - lower + 1)


def build_request(
    method: str,
    path: str,
    raw_headers: list[tuple[bytes, bytes]],
    query_string: str,
    body: bytes,
    authenticator: Authenticator,
    schemas: tuple[str, ...],
    *,
    plan_enabled: bool = False,
) -> ApiRequest:
    headers: dict[str, str] = {}
    prefer: list[str] = []
    for key, value in raw_headers:
        name = key.decode("latin-1").lower()
        text = value.decode("utf-8", "replace")  # JSON for request.headers, as PostgREST decodes it
        if name == "prefer":
            prefer.append(text)
        headers[name] = f"{headers[name]}, {text}" if name in headers and name != "cookie" else text
    identity = authenticator.identify(headers.get("authorization"))
    schema, negotiated = choose_schema(method, headers, schemas)
    is_rpc = path.startswith("/rpc/")
    target = path[len("/rpc/") :] if is_rpc else path.lstrip("/")
    return ApiRequest(
        method=method,
        path=path,
        target=target,
        is_rpc=is_rpc,
        headers=headers,
        identity=identity,
        schema=schema,
        profile_negotiated=negotiated,
        query=parse_query(query_string),
        prefs=parse_preferences(prefer),
        media=negotiate_media(headers.get("accept"), plan=plan_enabled),
        header_range=parse_range_header(headers.get("range")) if method in ("GET", "HEAD") else Range(),
        body=body,
    )
