"""Account rules an administrator may set (``COLDTRACE_CLOUD_ACCOUNTS__*``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class AccountSettings(BaseModel):
    """Lock-out and password length; the rest of the rules follow NIST SP 800-63B."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_failures: Annotated[int, Field(ge=1, le=100)] = 5
    """Failed sign-ins or signature re-authentications in a row that lock the account."""
    lockout: Annotated[timedelta, Field(gt=timedelta(0))] = timedelta(minutes=15)
    """How long a locked account stays locked (an administrator may unlock it sooner)."""
    min_password_length: Annotated[int, Field(ge=12, le=64)] = 12
    """At least 12 characters; SP 800-63B asks for 8 at least and no composition rules."""
    totp_issuer: Annotated[str, Field(min_length=1, max_length=64)] = "coldtrace"
    """The name authenticator apps show beside the account."""
