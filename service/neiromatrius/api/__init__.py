"""The HTTP API: a Starlette app built by ``create_app`` from the settings and the adapters."""

from .app import ApiServices, create_app

__all__ = ["ApiServices", "create_app"]
