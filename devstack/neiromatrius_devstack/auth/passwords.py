"""Passwords as GoTrue keeps them: bcrypt (golang.org/x/crypto/bcrypt, cost 10, ``$2a$`` hashes).

bcrypt takes tens of milliseconds by design, so it runs in a worker thread. A check against an
address with no user (or no password) still hashes once, so timing does not tell them apart.
"""

from __future__ import annotations

import asyncio

import bcrypt

from .errors import bad_request

COST = 10
MAX_BYTES = 72  # bcrypt.ErrPasswordTooLong
_DUMMY_HASH = bcrypt.hashpw(b"neiromatrius devstack: no such user", bcrypt.gensalt(COST, prefix=b"2a"))


def _hash(password: str) -> str:
    data = password.encode()
    if len(data) > MAX_BYTES:
        raise bad_request("validation_failed", "bcrypt: password length exceeds 72 bytes")
    return bcrypt.hashpw(data, bcrypt.gensalt(COST, prefix=b"2a")).decode()


def _matches(password: str, hashed: str | None) -> bool:
    data = password.encode()[:MAX_BYTES]
    try:
        target = hashed.encode() if hashed else _DUMMY_HASH
        return bcrypt.checkpw(data, target) and bool(hashed)
    except ValueError:  # not a bcrypt hash
        bcrypt.checkpw(data, _DUMMY_HASH)
        return False


async def hash_password(password: str) -> str:
    if len(password.encode()) > MAX_BYTES:
        return _hash(password)  # raises before any work
    return await asyncio.to_thread(_hash, password)


async def password_matches(password: str, hashed: str | None) -> bool:
    """Whether ``password`` matches the stored hash; one bcrypt run whatever ``hashed`` is."""
    return await asyncio.to_thread(_matches, password, hashed)
