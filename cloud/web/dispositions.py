"""What the dashboard needs around a QA disposition: who released or rejected a lot, when and
why, and whether the release was confirmed past an open excursion (``cloud.ledger.release_guard``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.ledger.release_guard import CONFIRMED_ACTION


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
