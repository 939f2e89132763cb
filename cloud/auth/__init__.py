"""Users, roles, API tokens and the audit trail.

Roles: ``viewer`` reads; ``operator`` runs the warehouse (ASNs, counts, moves); ``qa`` takes
quality decisions (release, reject, recall); ``admin`` may do everything, users included.
Tokens are random, shown once, and kept only as sha256 hashes.

Exceptions::

    AuthError                   any refusal
    ├── UnauthenticatedError    no token, or an unknown or revoked token, or a disabled user
    ├── ForbiddenError          the user's role does not allow the action
    └── UserExistsError         a user of that name already exists
"""

from __future__ import annotations


class AuthError(Exception):
    """An authentication or authorisation refusal."""


class UnauthenticatedError(AuthError):
    """No valid token was presented."""


class ForbiddenError(AuthError):
    """The user's role does not allow this."""


class UserExistsError(AuthError):
    """A user of that name already exists."""
