"""The shape the gateway expects of its parts (the REST side and the Realtime side)."""

from __future__ import annotations

from typing import Protocol

from starlette.types import ASGIApp


class Component(Protocol):
    """An ASGI app mounted under a prefix, with a lifecycle driven by the gateway's lifespan."""

    app: ASGIApp

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
