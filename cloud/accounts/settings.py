"""Account rules an administrator may set (``COLDTRACE_CLOUD_ACCOUNTS__*``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class OidcSettings(BaseModel):
    """An OpenID Connect identity provider people may sign in with (authorization code + PKCE).

    Users are not created from the provider: an administrator adds each person (name and role)
    first, and the provider's ``username_claim`` must equal that name. E-signatures still need
    the local password (``coldtrace users password``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: Annotated[str, Field(pattern=r"^https?://[^\s]+$")]
    """The provider's issuer URL; its ``/.well-known/openid-configuration`` is read."""
    client_id: Annotated[str, Field(min_length=1)]
    client_secret: SecretStr | None = None
    redirect_url: Annotated[str, Field(pattern=r"^https?://[^\s]+/ui/login/oidc/callback$")]
    """This service's callback as the provider knows it: ``https://<host>/ui/login/oidc/callback``."""
    username_claim: str = "preferred_username"
    label: str = "your organisation"
    """Shown on the sign-in button: "Sign in with <label>"."""
    timeout: Annotated[timedelta, Field(gt=timedelta(0))] = timedelta(seconds=10)


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
    oidc: OidcSettings | None = None
    """Sign-in through an OpenID Connect provider; None: local accounts only."""
