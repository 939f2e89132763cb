"""Quarantine on action-level excursions, through the ledger.

``quarantine_for`` runs in the processor's transaction: every usable balance at the excursion's
location becomes quarantined (ledger movements referencing ``excursion:<id>``), the excursion
records the lots, and a critical alert lists them. The lots then wait for a QA disposition
(``POST /v1/lots/{id}/disposition``, the ledger's signed release or reject entry). A released
lot keeps its exposure: nothing about its history is reset.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.coldchain.alerts import NewAlert, raise_alert
from cloud.coldchain.excursions import ExcursionEvent
from cloud.coldchain.store import SensorContext
from cloud.ledger.service import lots_at_location, quarantine_at_location


async def quarantine_for(
    conn: AsyncConnection[TupleRow],
    ctx: SensorContext,
    event: ExcursionEvent,
    excursion_id: int,
    *,
    actor: str,
) -> list[int]:
    """Quarantines the lots at the excursion's location; returns the lots moved."""
    reason = (
        f"action-level {event.kind} excursion at {ctx.location_id} (sensor {ctx.sensor_id})"
        f" since {event.started_at.isoformat()}" + (", freezing" if event.freeze else "")
    )
    lots = await quarantine_at_location(
        conn,
        location_id=ctx.location_id,
        effective_at=event.at,
        actor=actor,
        reason=reason,
        reference=f"excursion:{excursion_id}",
    )
    await _moved_away(conn, ctx, event, excursion_id)
    if not lots:
        return lots
    await conn.execute(
        "UPDATE excursions SET quarantined_lots = ARRAY(SELECT DISTINCT unnest("
        " quarantined_lots || %s::bigint[]) ORDER BY 1) WHERE excursion_id = %s",
        (lots, excursion_id),
    )
    await raise_alert(
        conn,
        NewAlert(
            kind="quarantine",
            severity="critical",
            at=event.at,
            message=f"{len(lots)} lot(s) quarantined at {ctx.location_id}: {reason}",
            dedup_key=f"quarantine:{excursion_id}:{','.join(map(str, lots))}",
            location_id=ctx.location_id,
            sensor_id=ctx.sensor_id,
            excursion_id=excursion_id,
            detail={"lots": lots},
        ),
    )
    return lots


async def _moved_away(
    conn: AsyncConnection[TupleRow], ctx: SensorContext, event: ExcursionEvent, excursion_id: int
) -> None:
    """Alerts about lots that were in the unit during the excursion but have left since.

    This happens when the excursion is found late (a backlog): the ledger quarantines by
    location, so those lots are named to a person instead of being moved automatically.
    """
    during = set(await lots_at_location(conn, ctx.location_id, event.started_at))
    cur = await conn.execute(
        "SELECT DISTINCT lot_id FROM balances WHERE location_id = %s AND quantity > 0",
        (ctx.location_id,),
    )
    still_here = {int(row[0]) for row in await cur.fetchall()}
    gone = sorted(during - still_here)
    if not gone:
        return
    await raise_alert(
        conn,
        NewAlert(
            kind="quarantine",
            severity="critical",
            at=event.at,
            message=(
                f"lot(s) {', '.join(map(str, gone))} were at {ctx.location_id} during an"
                f" action-level excursion (since {event.started_at.isoformat()}) and have left"
                " since: assess and quarantine them where they are"
            ),
            dedup_key=f"moved:{excursion_id}:{','.join(map(str, gone))}",
            location_id=ctx.location_id,
            sensor_id=ctx.sensor_id,
            excursion_id=excursion_id,
            detail={"moved_lots": gone},
        ),
    )
