"""TOTP second factor (RFC 6238, 30 s steps, 6 digits) through pyotp; pure but for the clock.

A code is accepted one step either side of now (clock drift), and only for a step later than
the last one accepted, so a code seen over a shoulder cannot be used again.

>>> secret = new_secret()
>>> at = datetime(2026, 1, 1, tzinfo=UTC)
>>> code = pyotp.TOTP(secret).at(at)
>>> matching_step(secret, code, at=at, last_step=None) == step_of(at)
True
>>> matching_step(secret, code, at=at, last_step=step_of(at)) is None
True
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta

import pyotp

STEP = timedelta(seconds=30)
WINDOW = 1
"""Steps accepted either side of the current one."""


def new_secret() -> str:
    """160 random bits, base32, as RFC 4226 recommends."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, *, username: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (usually as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def step_of(at: datetime) -> int:
    return int(at.timestamp()) // int(STEP.total_seconds())


def matching_step(secret: str, code: str, *, at: datetime, last_step: int | None) -> int | None:
    """The step ``code`` belongs to, within the window and after ``last_step``; else None."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now = step_of(at)
    for step in range(now - WINDOW, now + WINDOW + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def now() -> datetime:
    return datetime.now(UTC)
