"""The local stack's secrets, kept beside its data so keys and passwords survive restarts."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from . import jwt


@dataclass(frozen=True)
class StackSecrets:
    jwt_secret: str
    postgres_password: str
    authenticator_password: str
    anon_key: str
    service_role_key: str


SECRETS_FILE = "secrets.json"


def load(data_dir: Path) -> StackSecrets | None:
    path = data_dir / SECRETS_FILE
    if not path.exists():
        return None
    return StackSecrets(**json.loads(path.read_text(encoding="utf-8")))


def load_or_create(data_dir: Path) -> StackSecrets:
    existing = load(data_dir)
    if existing is not None:
        return existing
    path = data_dir / SECRETS_FILE
    jwt_secret = secrets.token_urlsafe(48)
    created = StackSecrets(
        jwt_secret=jwt_secret,
        postgres_password=secrets.token_urlsafe(24),
        authenticator_password=secrets.token_urlsafe(24),
        anon_key=jwt.api_key("anon", jwt_secret),
        service_role_key=jwt.api_key("service_role", jwt_secret),
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(asdict(created), indent=2), encoding="utf-8")
    return created


SERVICE_SECRET_FILE = "secret_key"


def service_secret_key(data_dir: Path) -> str:
    """A ``SECRET_KEY`` for the service on this stack, kept with its data so webhook signatures (derived from
    it) stay valid across restarts; ``--fresh`` starts over with a new one."""
    path = data_dir / SERVICE_SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()
