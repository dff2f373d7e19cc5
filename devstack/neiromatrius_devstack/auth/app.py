"""The Auth component: GoTrue's routes behind ``/auth/v1`` and one place that turns errors into answers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from . import account, admin, admin_list, grants, meta
from .context import AuthContext
from .errors import AuthError, OAuthError
from .wire import error_response, send_json

log = logging.getLogger(__name__)

Handler = Callable[[Request, AuthContext], Awaitable[Response]]


class AuthComponent:
    """``app`` serves GoTrue's paths (the prefix stripped); ``start()``/``stop()`` own its pool."""

    def __init__(self, auth: AuthContext) -> None:
        self.auth = auth
        routes = [
            self._route("/health", meta.health, ["GET"]),
            self._route("/settings", meta.settings, ["GET"]),
            self._route("/signup", meta.signup, ["POST"]),
            self._route("/token", grants.token, ["POST"]),
            self._route("/user", account.get_user, ["GET"]),
            self._route("/user", account.update_user, ["PUT"]),
            self._route("/logout", account.logout, ["POST"]),
            self._route("/admin/users", admin_list.list_users, ["GET"]),
            self._route("/admin/users", admin.create_user, ["POST"]),
            self._route("/admin/users/{user_id}", admin.get_user, ["GET"]),
            self._route("/admin/users/{user_id}", admin.update_user, ["PUT"]),
            self._route("/admin/users/{user_id}", admin.delete_user, ["DELETE"]),
        ]
        self.app: ASGIApp = Starlette(
            routes=routes,
            exception_handlers={HTTPException: _http_exception, AuthError: _auth_error, OAuthError: _auth_error},
        )

    def _route(self, path: str, handler: Handler, methods: list[str]) -> Route:
        auth = self.auth

        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request, auth)
            except (AuthError, OAuthError):
                raise
            except Exception:
                log.exception("auth %s %s failed", request.method, path)
                raise AuthError(500, "unexpected_failure", "Unexpected failure, please check server logs") from None

        return Route(path, endpoint, methods=methods, name=f"{handler.__module__}.{handler.__name__}")

    async def start(self) -> None:
        await self.auth.open()

    async def stop(self) -> None:
        await self.auth.close()


async def _auth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthError | OAuthError)
    return error_response(request, exc)


async def _http_exception(request: Request, exc: Exception) -> Response:
    # Unknown paths and methods: GoTrue's router answers with its HTTPError shape too.
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return send_json(status, {"code": status, "msg": "Not Found" if status == 404 else "Method Not Allowed"})
