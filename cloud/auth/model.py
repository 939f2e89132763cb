"""Roles, users and token hashing (pure).

>>> User(name="ana", role=Role.ADMIN).allows(Role.QA)
True
>>> User(name="bo", role=Role.VIEWER).allows(Role.OPERATOR)
False
>>> len(hash_token("ct_x"))
32
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

TOKEN_PREFIX = "ct_"  # noqa: S105  (a marker, not a secret)


class Role(StrEnum):
    OPERATOR = "operator"
    QA = "qa"
    VIEWER = "viewer"
    ADMIN = "admin"


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    def allows(self, *roles: Role) -> bool:
        """True when the user has one of ``roles``; an admin has them all."""
        return self.role is Role.ADMIN or self.role in roles


def new_token() -> str:
    """A fresh bearer token: 256 random bits, URL-safe, with a recognisable prefix."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    # Tokens carry 256 random bits, so a plain sha256 (no salt, no stretching) cannot be
    # brute-forced and lets the lookup use a unique index.
    return hashlib.sha256(token.encode("utf-8")).digest()
