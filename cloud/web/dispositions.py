"""What the dashboard needs around a QA disposition: the open excursions that still affect a
lot (a release then needs an explicit confirmation, recorded in the audit log), and who
released or rejected a lot, when and why.

An excursion affects a lot while it is open and either quarantined the lot or is at a location
where the lot has stock now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.auth.service import audit

CONFIRMED_ACTION = "release_during_open_excursion"
"""The audit action that records a release confirmed while an excursion was open."""


@dataclass(frozen=True)
class OpenExcursion:
    excursion_id: int
    location_name: str
    kind: str
    level: str
    started_at: datetime
    timezone: str = "UTC"
    """The site's zone, for the time in words."""

    def __str__(self) -> str:
        """``Fridge A: too warm since 2026-12-03 12:14 CET`` (in the site's zone)."""
        what = {"high": "too warm", "low": "too cold", "no_data": "no temperature"}.get(
            self.kind, self.kind
        )
        try:
            local = self.started_at.astimezone(ZoneInfo(self.timezone))
        except (ZoneInfoNotFoundError, ValueError):
            local = self.started_at.astimezone(UTC)
        return f"{self.location_name}: {what} since {local:%Y-%m-%d %H:%M} {local.tzname()}"


async def open_excursions_affecting(
    conn: AsyncConnection[TupleRow], lot_id: int
) -> list[OpenExcursion]:
    cur = await conn.execute(
        "SELECT e.excursion_id, l.name, e.kind, e.level, e.started_at, s.timezone"
        " FROM excursions e JOIN locations l USING (location_id) JOIN sites s USING (site_id)"
        " WHERE e.ended_at IS NULL AND (%(lot)s = ANY(e.quarantined_lots)"
        "   OR e.location_id IN (SELECT b.location_id FROM balances b"
        "                        WHERE b.lot_id = %(lot)s AND b.quantity > 0))"
        " ORDER BY e.started_at, e.excursion_id",
        {"lot": lot_id},
    )
    return [OpenExcursion(*row) for row in await cur.fetchall()]


async def record_confirmed_release(
    conn: AsyncConnection[TupleRow],
    *,
    actor: str,
    lot_id: int,
    reason: str,
    excursions: list[OpenExcursion],
) -> None:
    """In the release's transaction, after it: who confirmed releasing past which open
    excursions, tied to the release's last ledger entry."""
    cur = await conn.execute("SELECT last_entry_id FROM ledger_head")
    head = await cur.fetchone()
    assert head is not None
    await audit(
        conn, actor=actor, action=CONFIRMED_ACTION, subject=f"lot:{lot_id}", reason=reason,
        detail={"entry_id": int(head[0]), "excursions": [x.excursion_id for x in excursions],
                "where": [x.location_name for x in excursions]},
    )  # fmt: skip


@dataclass(frozen=True)
class Disposition:
    decision: str
    """``release`` or ``reject``."""
    actor: str
    at: datetime
    reason: str | None
    meaning: str | None
    """What the QA user's signature meant."""
    confirmed_open: tuple[str, ...] = ()
    """Locations of excursions still open when it was released (confirmed by the actor)."""


async def last_disposition(conn: AsyncConnection[TupleRow], lot_id: int) -> Disposition | None:
    """The lot's latest release or reject from the ledger, with its confirmation if any."""
    cur = await conn.execute(
        "SELECT movement, actor, effective_at, reason, signature_meaning, entry_id"
        " FROM ledger_entries WHERE lot_id = %s AND movement IN ('release', 'reject')"
        " ORDER BY entry_id DESC LIMIT 1",
        (lot_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    decision, actor, at, reason, meaning, entry_id = row
    confirmed: tuple[str, ...] = ()
    if decision == "release":
        cur = await conn.execute(
            "SELECT detail FROM audit_log WHERE subject = %s AND action = %s"
            " AND (detail->>'entry_id')::bigint = %s ORDER BY audit_id DESC LIMIT 1",
            (f"lot:{lot_id}", CONFIRMED_ACTION, entry_id),
        )
        found = await cur.fetchone()
        if found is not None:
            confirmed = tuple(str(w) for w in found[0].get("where", []))
    return Disposition(str(decision), str(actor), at, reason, meaning, confirmed)
