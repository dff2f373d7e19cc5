"""A GoTrue (Supabase Auth) double for the local stack, served under ``/auth/v1``.

The password sign-in subset a Supabase app uses: ``/token`` (password and refresh_token grants),
``/user``, ``/logout``, ``/settings``, ``/health``, ``/signup`` (disabled) and the admin API, with
GoTrue's tables in ``auth`` (auth_schema.sql), its error shapes and codes, and its access-token
claims. docs/auth.md lists the facts it follows and their sources.
"""

from __future__ import annotations

from ..context import StackContext
from .app import AuthComponent
from .context import AuthContext
from .settings import AuthSettings


def create(ctx: StackContext, settings: AuthSettings, issuer: str) -> AuthComponent:
    return AuthComponent(AuthContext(ctx.keys.jwt_secret, issuer, settings, ctx.admin_dsn))


__all__ = ["AuthComponent", "AuthSettings", "create"]
