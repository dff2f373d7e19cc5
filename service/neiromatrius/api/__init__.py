"""The HTTP API: a Starlette app built by ``create_app`` from the settings and the adapters."""

from .app import create_app
from .services import ApiServices

__all__ = ["ApiServices", "create_app"]
