"""``GET /admin/users``: GoTrue's user list (internal/api/admin.go ``adminUsers``).

Pagination is GoTrue's ``shared.Paginate``/``AddPaginationHeaders``: ``page`` (from 1) and
``per_page`` (default 50, at most 1000), newest users first, a ``Link`` header with ``next`` and
``last`` and ``X-Total-Count``: supabase-js's ``listUsers`` reads both.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from . import users
from .context import AuthContext, request_aud
from .errors import bad_request
from .guards import require_admin
from .wire import send_json

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 1000


async def list_users(request: Request, auth: AuthContext) -> Response:
    require_admin(request, auth)
    page, per_page = _pagination(request)
    aud = request_aud(request)
    text_filter = request.query_params.get("filter", "")
    where = "instance_id = $1 and aud = $2"
    args: list[Any] = [users.NIL_UUID, aud]
    if text_filter:
        where += " and (email like $3 or raw_user_meta_data->>'full_name' ilike $3)"
        args.append(f"%{text_filter}%")
    async with auth.pool.acquire() as conn:
        total = await conn.fetchval(f"select count(*) from auth.users where {where}", *args)
        rows = await conn.fetch(
            f"select {users.USER_COLUMNS} from auth.users where {where} order by created_at desc, id"
            f" limit {per_page} offset {(page - 1) * per_page}",
            *args,
        )
        found = [users.decode(row) for row in rows]
        linked = await users.identities(conn, [user["id"] for user in found])
    body = {"users": [users.to_json(user, linked[user["id"]]) for user in found], "aud": aud}
    return send_json(200, body, {"Link": _link(request, page, per_page, total), "X-Total-Count": str(total)})


def _pagination(request: Request) -> tuple[int, int]:
    page = _positive(request, "page", 1, None)
    per_page = _positive(request, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
    return page, per_page


def _positive(request: Request, name: str, default: int, maximum: int | None) -> int:
    raw = request.query_params.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit():
        raise bad_request(
            "validation_failed", f'Bad Pagination Parameters: strconv.ParseUint: parsing "{raw}": invalid syntax'
        )
    value = int(raw)
    if value == 0:
        raise bad_request("validation_failed", f"Bad Pagination Parameters: {name} must be greater than 0")
    if maximum is not None and value > maximum:
        raise bad_request("validation_failed", f"Bad Pagination Parameters: {name} must not exceed {maximum}")
    return value


def _link(request: Request, page: int, per_page: int, total: int) -> str:
    # The URL as GoTrue sees it behind Kong: the /auth/v1 prefix stripped, query keys sorted.
    path = request.scope["path"]
    root = request.scope.get("root_path", "")
    path = path[len(root) :] if root and path.startswith(root) else path
    query = dict(request.query_params)
    pages = max(-(-total // per_page), 1)
    header = ""
    if pages > page:
        header += f'<{path}?{urlencode(sorted({**query, "page": str(page + 1)}.items()))}>; rel="next", '
    return header + f'<{path}?{urlencode(sorted({**query, "page": str(pages)}.items()))}>; rel="last"'
