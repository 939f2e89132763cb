"""Readings from a shipment's loggers, from a file read out on arrival or a live tracker.

The readings are tied to the shipment that lists the logger and whose dispatch-to-receipt window
overlaps them. After storing them the transit is judged again; an action-level excursion:

- on a live tracker, or a file imported while the shipment is still in transit, quarantines
  what is in transit at once (it arrives quarantined);
- in a file imported after the receipt, quarantines the lots the shipment brought wherever they
  are now at the receiving site (every usable balance of those lots there: a person releases
  what was not on the truck).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import post
from cloud.transfers import TransferRejectedError
from cloud.transfers.logger_files import check_times
from cloud.transfers.loggers import (
    Sample,
    condemn,
    judge_transfer,
    logger_transfer,
    sensor_id,
    store_samples,
)
from cloud.transfers.store import Transfer
from cloud.transfers.transit import TransitJudgement


@dataclass(frozen=True)
class Imported:
    transfer_id: int
    reference: str
    sensor_id: str
    stored: int
    verdict: TransitJudgement | None
    quarantined_lots: list[int]


async def import_samples(
    conn: AsyncConnection[TupleRow],
    logger_id: str,
    samples: Sequence[Sample],
    now: datetime,
    *,
    backlog_horizon: timedelta = timedelta(days=365),
) -> Imported:
    """Stores a logger's readings against its shipment and acts on the transit's verdict.

    ``now`` is the cloud's time: readings older than ``backlog_horizon`` before it or stamped
    after it are refused, all of them (``logger_files.check_times``).
    """
    if not samples:
        raise TransferRejectedError("no readings")
    check_times(samples, now=now, backlog_horizon=backlog_horizon)
    first, last = min(s.time for s in samples), max(s.time for s in samples)
    t = await logger_transfer(conn, logger_id, first, last)
    if t is None:
        raise TransferRejectedError(
            f"no dispatched shipment carries logger {logger_id!r} between {first.isoformat()}"
            f" and {last.isoformat()}"
        )
    sensor = await _sensor_of(conn, t, logger_id)
    stored = await store_samples(conn, sensor, samples, now)
    verdict = await judge_transfer(conn, t, until=now)
    lots: list[int] = []
    if verdict is not None and verdict.action:
        if t.status == "in_transit":
            lots = await condemn(conn, t, verdict, now)
        else:
            await condemn(conn, t, verdict, now)  # records the excursions; transit is empty
            lots = await _quarantine_received(conn, t, verdict, now)
    return Imported(t.transfer_id, t.reference, sensor, stored, verdict, lots)


async def _sensor_of(conn: AsyncConnection[TupleRow], t: Transfer, logger_id: str) -> str:
    cur = await conn.execute(
        "SELECT sensor_id FROM shipment_loggers WHERE transfer_id = %s AND logger_id = %s",
        (t.transfer_id, logger_id),
    )
    row = await cur.fetchone()
    return sensor_id(t, logger_id) if row is None else str(row[0])


async def _quarantine_received(
    conn: AsyncConnection[TupleRow], t: Transfer, verdict: TransitJudgement, now: datetime
) -> list[int]:
    if t.to_site is None:
        return []
    reference = f"transit:{t.reference}:received"
    cur = await conn.execute(
        "SELECT b.lot_id, b.location_id, b.status, b.quantity FROM balances b"
        " JOIN locations l USING (location_id) WHERE l.site_id = %s AND b.quantity > 0"
        " AND b.status IN ('available', 'released') AND b.lot_id IN (SELECT lot_id FROM"
        "  ledger_entries WHERE reference = %s AND from_location = %s)"
        " AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.reference = %s"
        "  AND e.lot_id = b.lot_id AND e.from_location = b.location_id)"
        " ORDER BY 1, 2, 3",
        (t.to_site, f"transfer:{t.reference}", t.transit_location_id, reference),
    )
    first = verdict.action[0]
    drafts = [
        Draft(
            Movement.QUARANTINE,
            int(lot),
            int(qty),
            now,
            "transit",
            frm=Place(str(loc), Status(st)),
            to=Place(str(loc), Status.QUARANTINED),
            reason=(
                f"action-level {first.kind} excursion in transit on logger {first.sensor_id},"
                " found in a logger file read after receipt"
            ),
            reference=reference,
        )
        for lot, loc, st, qty in await cur.fetchall()
    ]
    await post(conn, drafts)
    lots = sorted({d.lot_id for d in drafts})
    if lots:
        await conn.execute(
            "UPDATE lots SET status = 'quarantined' WHERE lot_id = ANY(%s)"
            " AND status IN ('available', 'released')",
            (lots,),
        )
    return lots
