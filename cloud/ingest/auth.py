"""Gateway tokens: generated once, stored as their sha256 digest, checked in constant time.

A gateway sends ``Authorization: Bearer <token>``. The gateway is found by the digest of the
token (a unique index), so the token itself never sits in the database; the digest fetched is
compared again with ``hmac.compare_digest`` so that no byte-by-byte comparison of secrets happens
anywhere in our code.

Who may write what, in three layers:

1. **the token** names one gateway (``authenticate``; disabled gateways are refused, 401);
2. **the batch** must be that gateway's own (``authorize``, 403 otherwise);
3. **each record** must concern the gateway's site: a gateway is registered to one site
   (``gateways.site_id``: ``coldtrace cloud gateway add ID --site SITE``, moved with
   ``coldtrace cloud gateway site ID SITE``, both audited in ``cloud.admin.gateways``). Records
   of another site's sensors, readers or doors, and statuses of devices another gateway owns,
   are kept as refused dead letters instead of being applied (``cloud.ingest.scope``; the
   batch is still acknowledged). A gateway without a site may write only for devices bound to
   no site.

Every successful ``authenticate`` also records that the gateway was in contact
(``gateways.last_contact_at``, read by the alarm ``gateway_offline``), so all gateway routes
count, not only batches. The stamp is written only when the one it replaces is older than
``CONTACT_EVERY``, decided from the row the token lookup reads anyway: a busy gateway costs at
most one small write per 30 s, whichever worker serves it. The write skips a row another
transaction holds locked (an admin moving the gateway): a later request records it instead of
this one waiting.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.ingest import ForbiddenError, UnauthenticatedError

_TOKEN_BYTES = 32
CONTACT_EVERY = timedelta(seconds=30)
"""A gateway's contact stamp is renewed when it is older than this."""


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe text).

    >>> len(new_token()) >= 43
    True
    """
    return secrets.token_urlsafe(_TOKEN_BYTES)


def token_digest(token: str) -> bytes:
    """The sha256 digest stored for a token.

    >>> token_digest("abc").hex()[:8]
    'ba7816bf'
    """
    return hashlib.sha256(token.encode("utf-8")).digest()


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header, or ``UnauthenticatedError``."""
    if not authorization:
        raise UnauthenticatedError("missing Authorization: Bearer <gateway token>")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UnauthenticatedError("Authorization must be 'Bearer <gateway token>'")
    return token


@dataclass(frozen=True)
class GatewayIdentity:
    gateway_id: str
    site_id: str | None
    """The site the gateway writes for (None: only devices bound to no site)."""


async def authenticate(conn: AsyncConnection[TupleRow], token: str) -> GatewayIdentity:
    """The enabled gateway owning ``token``, or ``UnauthenticatedError``."""
    digest = token_digest(token)
    cur = await conn.execute(
        "SELECT gateway_id, site_id, token_hash, disabled_at,"
        " last_contact_at IS NULL OR last_contact_at < now() - %s"
        " FROM gateways WHERE token_hash = %s",
        (CONTACT_EVERY, digest),
    )
    row = await cur.fetchone()
    if row is None or not hmac.compare_digest(bytes(row[2]), digest):
        raise UnauthenticatedError("unknown gateway token")
    if row[3] is not None:
        raise UnauthenticatedError("this gateway is disabled")
    if row[4]:
        await record_contact(conn, str(row[0]))
    return GatewayIdentity(gateway_id=str(row[0]), site_id=row[1])


async def record_contact(conn: AsyncConnection[TupleRow], gateway_id: str) -> None:
    """Stamps ``last_contact_at`` unless a fresher stamp is there or the row is locked."""
    await conn.execute(
        "UPDATE gateways SET last_contact_at = now() WHERE gateway_id = ("
        " SELECT gateway_id FROM gateways WHERE gateway_id = %s"
        " AND (last_contact_at IS NULL OR last_contact_at < now() - %s)"
        " FOR NO KEY UPDATE SKIP LOCKED)",
        (gateway_id, CONTACT_EVERY),
    )


def authorize(identity: GatewayIdentity, gateway_id: str) -> None:
    """A token writes only for its own gateway."""
    if not hmac.compare_digest(identity.gateway_id.encode(), gateway_id.encode()):
        raise ForbiddenError(
            f"this token belongs to gateway {identity.gateway_id!r}, not {gateway_id!r}"
        )


async def add_gateway(
    conn: AsyncConnection[TupleRow], gateway_id: str, site_id: str | None, *, rotate: bool = False
) -> str:
    """Registers a gateway for ``site_id`` (or gives it a new token with ``rotate``); returns the
    token once. Callers outside tests go through ``cloud.admin.gateways``, which audits it."""
    token = new_token()
    if rotate:
        cur = await conn.execute(
            "UPDATE gateways SET token_hash = %s WHERE gateway_id = %s",
            (token_digest(token), gateway_id),
        )
        if cur.rowcount != 1:
            raise LookupError(f"no gateway {gateway_id!r} to rotate")
        return token
    await conn.execute(
        "INSERT INTO gateways (gateway_id, site_id, token_hash) VALUES (%s, %s, %s)",
        (gateway_id, site_id, token_digest(token)),
    )
    return token
