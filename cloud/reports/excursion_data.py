"""The figures of one excursion's report, from the tables the excursion API reads.

``GET /v1/excursions/{id}`` and ``GET /v1/excursions/{id}/closure`` read ``excursions``,
``excursion_closures`` (``cloud.alarms.actions.get_closure``) and ``e_signatures``
(``cloud.signatures.store``); so does this, plus the alerts the excursion raised with their
acknowledgements, the lots it quarantined and the QA decisions on them, and the unit record
around it (an hour either side) for the chart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.alarms.actions import Closure, get_closure
from cloud.reports import ReportInputError
from cloud.reports.unit_data import UnitRecord, unit_record
from cloud.signatures.core import Signature
from cloud.signatures.store import signatures_for

MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class ExcursionFacts:
    excursion_id: int
    location_id: str
    sensor_id: str
    kind: str
    level: str
    started_at: datetime
    confirmed_at: datetime | None
    escalated_at: datetime | None
    ended_at: datetime | None
    peak_value: float | None
    frozen: bool
    profile_id: str | None


@dataclass(frozen=True)
class RaisedAlert:
    alert_id: int
    at: datetime
    kind: str
    severity: str
    message: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_note: str | None


@dataclass(frozen=True)
class AffectedLot:
    lot_id: int
    gtin: str
    lot_number: str
    product: str
    status: str


@dataclass(frozen=True)
class Decision:
    """A QA disposition (release or reject) of an affected lot, from the ledger."""

    entry_id: int
    lot_id: int
    movement: str
    quantity: int
    location_id: str | None
    actor: str
    at: datetime
    reason: str | None


@dataclass(frozen=True)
class ExcursionReport:
    facts: ExcursionFacts
    record: UnitRecord
    alerts: list[RaisedAlert]
    closure: Closure | None
    lots: list[AffectedLot]
    decisions: list[Decision]
    signatures: list[Signature]
    """On the excursion (its closure) and on the affected lots (their dispositions)."""


_FACTS_SQL = """
SELECT excursion_id, location_id, sensor_id, kind, level, started_at, confirmed_at,
       escalated_at, ended_at, peak_value, frozen, profile_id, quarantined_lots
FROM excursions WHERE excursion_id = %s
"""
_ALERTS_SQL = """
SELECT alert_id, at, kind, severity, message, acknowledged_at, acknowledged_by, ack_note
FROM alerts WHERE excursion_id = %s ORDER BY at, alert_id
"""
_LOTS_SQL = """
SELECT l.lot_id, l.gtin, l.lot_number, p.name, l.status
FROM lots l JOIN products p USING (gtin) WHERE l.lot_id = ANY(%s) ORDER BY l.lot_id
"""
_DECISIONS_SQL = """
SELECT entry_id, lot_id, movement, quantity, coalesce(to_location, from_location), actor,
       effective_at, reason
FROM ledger_entries
WHERE lot_id = ANY(%(lots)s) AND movement IN ('release', 'reject') AND effective_at >= %(since)s
ORDER BY entry_id
"""


async def decisions(
    conn: AsyncConnection[TupleRow], lot_ids: list[int], since: datetime
) -> list[Decision]:
    cur = await conn.execute(_DECISIONS_SQL, {"lots": lot_ids, "since": since})
    return [Decision(*r) for r in await cur.fetchall()]


async def excursion_report(
    conn: AsyncConnection[TupleRow], excursion_id: int, *, now: datetime, default_silence: timedelta
) -> ExcursionReport:
    cur = await conn.execute(_FACTS_SQL, (excursion_id,))
    row = await cur.fetchone()
    if row is None:
        raise ReportInputError(f"no excursion {excursion_id}")
    facts = ExcursionFacts(*row[:12])
    lot_ids = [int(i) for i in row[12] or []]
    end = min((facts.ended_at or now) + MARGIN, now + timedelta(minutes=1))
    record = await unit_record(conn, facts.location_id, start=facts.started_at - MARGIN,
                               end=end, default_silence=default_silence)  # fmt: skip
    cur = await conn.execute(_ALERTS_SQL, (excursion_id,))
    alerts = [RaisedAlert(*r) for r in await cur.fetchall()]
    cur = await conn.execute(_LOTS_SQL, (lot_ids,))
    lots = [AffectedLot(*r) for r in await cur.fetchall()]
    subjects = [f"excursion:{excursion_id}", *(f"lot:{i}" for i in lot_ids)]
    return ExcursionReport(
        facts, record, alerts, await get_closure(conn, excursion_id), lots,
        await decisions(conn, lot_ids, facts.started_at), await signatures_for(conn, subjects),
    )  # fmt: skip
