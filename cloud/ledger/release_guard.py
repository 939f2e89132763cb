"""A release past an open excursion: which open excursions still affect a lot, and the record
of a QA user's explicit confirmation to release it anyway (the dashboard and the REST API both
ask for it: 409 without).

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


def confirm_needed(still_open: list[OpenExcursion]) -> dict[str, object]:
    """The 409's detail: the caller asks for the confirmation and sends the release again."""
    return {
        "confirm": "open_excursion",
        "message": "An excursion affecting this lot is still open: "
        + "; ".join(str(x) for x in still_open)
        + ". Confirm to release it anyway (the tick box, or confirm_open_excursion in the API).",
        "excursions": [x.excursion_id for x in still_open],
    }
