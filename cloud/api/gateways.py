"""Gateways (site, clock skew, refusals) and the dead letters ingest kept.

``GET /v1/gateways`` shows, per gateway, the site it writes for, its clock against the cloud's
(``clock_skew``: the ``sent_at`` of the last batch or heartbeat, whichever came last, minus the
cloud's receipt; transit time makes it slightly negative on a correct clock), its outbox depth
as its last batch reported it (``outbox``; null for gateways that do not report it) and how many
records were refused, by reason.
``GET /v1/dead-letters`` (admin) lists what was kept instead of applied: records the cloud
refused for their scope (``refusal`` set, ``raw`` is the record's JSON) and dead letters the
gateways made (``refusal`` null), newest first, paged by an opaque keyset cursor (one batch's
dead letters share a ``stored_at``, so a time alone cannot page them).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel

from cloud.api.deps import IdPath, IdQuery, Pool
from cloud.auth.deps import require_role
from cloud.auth.model import Role

router = APIRouter(tags=["devices"])

_READERS = [require_role(Role.VIEWER, Role.OPERATOR, Role.QA)]


class GatewayOutboxOut(BaseModel):
    pending: int
    """Records waiting in the gateway's outbox when it sent that batch (the batch included)."""
    oldest_age: timedelta | None
    """How long the oldest of them had waited, by the gateway's clock."""
    reported_at: datetime
    """The cloud's receipt of the batch that reported it."""


class GatewayOut(BaseModel):
    gateway_id: str
    name: str | None = None
    """The name people see (``coldtrace cloud gateway name``); None until given."""
    site_id: str | None
    """The site the gateway writes for; None: only devices bound to no site."""
    disabled: bool
    last_batch_at: datetime | None
    """The cloud's receipt of the gateway's last stored batch."""
    last_sent_at: datetime | None
    """That batch's ``sent_at``, by the gateway's clock."""
    clock_skew: timedelta | None
    """The gateway's clock minus the cloud's, measured by its last batch or heartbeat (whichever
    came last; an idle gateway's heartbeats keep it current): positive when it runs ahead."""
    outbox: GatewayOutboxOut | None = None
    """The outbox depth the gateway's last stored batch reported; None when it reports none."""
    software_version: str | None = None
    """The edge agent's version, from the ``User-Agent`` of its batches; None: never said."""
    refusals: dict[str, int]
    """Refusal events per reason: foreign_site, foreign_device, no_site (kept as dead letters),
    out_of_range, too_old, too_far_ahead, chunks, invalid (answered 422), dead_letter (dead
    letters the gateway sent)."""


_GATEWAYS = """
SELECT g.gateway_id, g.site_id, g.disabled_at IS NOT NULL, s.last_received_at, s.last_sent_at,
       coalesce((SELECT jsonb_object_agg(r.reason, r.refused) FROM gateway_refusals r
                 WHERE r.gateway_id = g.gateway_id), '{}'::jsonb),
       s.outbox_pending, s.outbox_oldest_age, g.name, g.software_version,
       g.clock_sent_at - g.clock_received_at
FROM gateways g
LEFT JOIN LATERAL (
    SELECT gs.last_received_at, gs.last_sent_at, gs.outbox_pending, gs.outbox_oldest_age
    FROM gateway_streams gs
    WHERE gs.gateway_id = g.gateway_id AND gs.last_received_at IS NOT NULL
    ORDER BY gs.last_received_at DESC LIMIT 1
) s ON true
WHERE %(g)s::text IS NULL OR g.gateway_id = %(g)s
ORDER BY g.gateway_id
"""


async def _gateways(conn: AsyncConnection[TupleRow], gateway_id: str | None) -> list[GatewayOut]:
    cur = await conn.execute(_GATEWAYS, {"g": gateway_id})
    return [
        GatewayOut(
            gateway_id=r[0], site_id=r[1], disabled=r[2], last_batch_at=r[3], last_sent_at=r[4],
            clock_skew=r[10],
            refusals={str(k): int(v) for k, v in r[5].items()},
            name=r[8], software_version=r[9],
            outbox=None if r[6] is None or r[3] is None else GatewayOutboxOut(
                pending=r[6], oldest_age=r[7], reported_at=r[3]),
        )
        for r in await cur.fetchall()
    ]  # fmt: skip


@router.get("/v1/gateways", response_model=list[GatewayOut], dependencies=_READERS)
async def list_gateways(pool: Pool) -> list[GatewayOut]:
    """Every registered gateway with its site, clock skew, outbox depth and refusal counts."""
    async with pool.connection() as conn:
        return await _gateways(conn, None)


@router.get("/v1/gateways/{gateway_id:path}", response_model=GatewayOut, dependencies=_READERS)
async def get_gateway(gateway_id: IdPath, pool: Pool) -> GatewayOut:
    async with pool.connection() as conn:
        found = await _gateways(conn, gateway_id)
    if not found:
        raise HTTPException(404, f"no gateway {gateway_id!r}")
    return found[0]


class DeadLetterOut(BaseModel):
    gateway_id: str
    boot_id: UUID
    seq: int
    source: str
    reason: str
    refusal: str | None
    """Why the cloud refused the record (foreign_site, foreign_device, no_site); None when the
    gateway made the dead letter."""
    record_kind: str | None
    received_at: datetime
    stored_at: datetime
    raw_base64: str
    text: str | None
    """``raw`` as text when it is UTF-8 (a refused record's JSON)."""


def _text(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


class DeadLetterPage(BaseModel):
    dead_letters: list[DeadLetterOut]
    next_cursor: str | None
    """Pass as ``cursor`` for the next (older) page; None on the last page."""


def _cursor(d: DeadLetterOut) -> str:
    key = [d.stored_at.isoformat(), d.gateway_id, str(d.boot_id), d.seq]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode("ascii")


def _key(cursor: str) -> tuple[datetime, str, UUID, int]:
    """The position a cursor names; 422 for anything this API did not hand out."""
    try:
        stored, gateway, boot, seq = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        at = datetime.fromisoformat(stored)
        if at.tzinfo is None or not isinstance(gateway, str) or type(seq) is not int:
            raise ValueError("not a cursor")  # noqa: TRY301
        return at, gateway, UUID(boot), seq
    except (ValueError, TypeError, AttributeError) as err:  # binascii, JSON errors: ValueError
        raise HTTPException(422, "cursor is not one this API handed out") from err


_DEAD_LETTERS = """
SELECT gateway_id, boot_id, seq, source, reason, refusal, record_kind, received_at, stored_at,
       raw
FROM dead_letters
WHERE (%(g)s::text IS NULL OR gateway_id = %(g)s)
  AND (%(m)s::text IS NULL OR (refusal IS NOT NULL) = (%(m)s = 'cloud'))
  AND (%(at)s::timestamptz IS NULL OR (stored_at, gateway_id, boot_id, seq)
       < (%(at)s::timestamptz, %(gw)s::text, %(boot)s::uuid, %(seq)s::int8))
ORDER BY stored_at DESC, gateway_id DESC, boot_id DESC, seq DESC
LIMIT %(n)s
"""


@router.get(
    "/v1/dead-letters",
    response_model=DeadLetterPage,
    dependencies=[require_role(Role.ADMIN)],
)
async def list_dead_letters(
    pool: Pool,
    gateway_id: IdQuery = None,
    made_by: Annotated[Literal["cloud", "gateway"] | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=1024, pattern=r"^[A-Za-z0-9_=-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeadLetterPage:
    """Dead letters, newest first, ``limit`` per page (``next_cursor`` pages on)."""
    at, gw, boot, seq = _key(cursor) if cursor else (None, None, None, None)
    async with pool.connection() as conn:
        cur = await conn.execute(
            _DEAD_LETTERS,
            {"g": gateway_id, "m": made_by, "at": at, "gw": gw, "boot": boot, "seq": seq,
             "n": limit + 1},
        )  # fmt: skip
        rows = await cur.fetchall()
    found = [
        DeadLetterOut(
            gateway_id=r[0], boot_id=r[1], seq=r[2], source=r[3], reason=r[4], refusal=r[5],
            record_kind=r[6], received_at=r[7], stored_at=r[8],
            raw_base64=base64.b64encode(bytes(r[9])).decode("ascii"), text=_text(bytes(r[9])),
        )
        for r in rows
    ]  # fmt: skip
    more = len(found) > limit
    page = found[:limit]
    return DeadLetterPage(dead_letters=page, next_cursor=_cursor(page[-1]) if more else None)
