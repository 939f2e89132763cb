"""Accounts: people's passwords and second factor, lock-out, dashboard sessions, e-signatures.

Users, roles and API tokens live in ``cloud.auth``; API tokens stay for machines and scripts.
This room holds what a person has: a password (argon2id), an optional TOTP second factor, a
lock-out after repeated failures, a dashboard session whose random id travels in the cookie, and
the re-authentication an electronic signature needs (``cloud.signatures``). Sessions never
raise: an unknown, idle, expired or revoked session reads as "not signed in".

Exceptions::

    AccountError                 any refusal of this room
    ├── WeakPasswordError        the new password breaks a rule (the message says which)
    ├── SignInError              wrong name, password or code (one message for all: no oracle)
    │   └── LockedError          too many failures: the account is locked until a time
    ├── NoPasswordError          the user has no password (a machine account): cannot sign
    └── EnrolmentError           no TOTP enrolment pending, or its code is wrong
"""

from __future__ import annotations

from datetime import datetime


class AccountError(Exception):
    """A refusal by the accounts room."""


class WeakPasswordError(AccountError):
    """A new password that breaks the password rules."""


class SignInError(AccountError):
    """Wrong user name, password or second-factor code."""


class LockedError(SignInError):
    """The account is locked after repeated failures."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"account locked after repeated failures until {until.isoformat()}")
        self.until = until


class NoPasswordError(AccountError):
    """The user has no password: an account for machines, which may not sign records."""


class EnrolmentError(AccountError):
    """A TOTP enrolment that cannot be confirmed."""
