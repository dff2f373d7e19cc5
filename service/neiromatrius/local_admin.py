"""The local admin ``make run`` creates, so a newcomer can sign in at once.

Its password is generated on the first start and kept beside the stack's data (mode 0600), so later
starts print the same credentials; ``--fresh`` deletes both the database and the file. The account is
made through the same use case as ``neiromatrius operator add`` (Auth's admin API and PostgREST).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from . import composition
from .adapters.supabase_operators import SupabaseAuthAdmin, SupabaseOperatorDirectory
from .config import Settings
from .core.operators import OperatorAccounts, Role
from .errors import AlreadyExists

CREDENTIALS_FILE = "local_admin.json"
LOCAL_ADMIN_EMAIL = "admin@neiromatrius.local"


@dataclass(frozen=True)
class LocalAdmin:
    email: str
    password: str


def credentials(data_dir: Path) -> LocalAdmin:
    """The stored credentials, or new ones written first (a start that stops half-way reuses them)."""
    path = data_dir / CREDENTIALS_FILE
    if path.exists():
        return LocalAdmin(**json.loads(path.read_text(encoding="utf-8")))
    created = LocalAdmin(email=LOCAL_ADMIN_EMAIL, password=secrets.token_urlsafe(18))
    data_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)  # touch's mode is masked by the umask
    path.write_text(json.dumps(asdict(created), indent=2), encoding="utf-8")
    return created


async def ensure_local_admin(settings: Settings, data_dir: Path) -> LocalAdmin:
    """The local admin exists, as an active-or-not operator row with the stored credentials' account."""
    admin = credentials(data_dir)
    async with composition.open_resources(settings) as resources:
        accounts = OperatorAccounts(
            SupabaseAuthAdmin(resources.supabase), SupabaseOperatorDirectory(resources.supabase)
        )
        try:
            await accounts.add(admin.email, Role.ADMIN, "Local admin", admin.password)
        except AlreadyExists:
            try:  # the account is there: make sure it is an operator too (a no-op when it is)
                await accounts.add(admin.email, Role.ADMIN, "Local admin", None)
            except AlreadyExists:
                pass
    return admin
