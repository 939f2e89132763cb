"""People with passwords (and a TOTP factor) for account and e-signature tests."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pyotp

from cloud.accounts.settings import AccountSettings
from cloud.accounts.store import set_full_name, set_password

PASSWORD = "blue fridge at dawn"


async def give_password(
    url: str, name: str, *, full_name: str | None = None, totp_secret: str | None = None
) -> None:
    """Sets ``name``'s password to ``PASSWORD``, a printed name and, optionally, a TOTP secret."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await set_password(conn, name, PASSWORD, AccountSettings())
        await set_full_name(conn, name, full_name or f"{name.title()} Example")
        if totp_secret is not None:
            await conn.execute(
                "UPDATE users SET totp_secret = %s WHERE name = %s", (totp_secret, name)
            )
        await conn.commit()


def code_at_step(secret: str, offset: int = 0) -> str:
    """The TOTP code ``offset`` steps from now (within the accepted window of one step)."""
    return pyotp.TOTP(secret).at(datetime.now(UTC).timestamp() + 30 * offset)


def signature(name: str, meaning: str, *, code: str | None = None) -> dict[str, str | None]:
    """The ``signature`` block of a signed request by ``name`` (password ``PASSWORD``)."""
    return {"username": name, "password": PASSWORD, "meaning": meaning, "code": code}
