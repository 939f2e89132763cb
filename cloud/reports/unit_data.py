"""The figures of a storage unit's temperature record, from the functions the dashboard uses.

``cloud.web.history.history`` answers ``/ui/history`` (the unit chart and its CSV); the record
is built on the very same ``History``, so its statistics, gaps, excursions, acknowledgements
and maintenance windows are the chart's. A month comes from the hourly rollups, a long range
from the daily ones, a day or two from the raw readings, as on the chart. The daily rows are
the site's local days: min of the points' minima, max of their maxima, the sample-weighted mean.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.calibration.store import FlaggedSpan, flagged
from cloud.reports import ReportInputError
from cloud.signatures.core import Signature
from cloud.signatures.store import signatures_for_entries
from cloud.web.history import MAX_SPAN, History, history, unit_info


@dataclass(frozen=True)
class DayRow:
    day: date
    sensor_id: str
    samples: int
    low: float
    mean: float
    high: float


@dataclass(frozen=True)
class ExcursionRow:
    excursion_id: int
    sensor_id: str
    kind: str
    level: str
    started_at: datetime
    ended_at: datetime | None
    peak_value: float | None


@dataclass(frozen=True)
class UnitRecord:
    history: History
    days: list[DayRow]
    excursions: list[ExcursionRow]
    overdue: list[FlaggedSpan]
    """Periods in the range when a sensor of the unit was past its calibration's due date."""
    signatures: list[Signature] = field(default_factory=list)
    """E-signatures on the QA dispositions of stock at the unit in the range."""


def daily_rows(h: History) -> list[DayRow]:
    """Per sensor and local day: min, sample-weighted mean and max of the chart's points."""
    zone = ZoneInfo(h.unit.timezone)
    acc: dict[tuple[str, date], list[float]] = defaultdict(lambda: [0, 0.0, float("inf"), -1e9])
    for s in h.series:
        for t, n, lo, mean, hi in zip(s.time, s.samples, s.low, s.mean, s.high, strict=True):
            if not n or lo is None or mean is None or hi is None:
                continue
            a = acc[(s.sensor_id, t.astimezone(zone).date())]
            a[0] += n
            a[1] += n * mean
            a[2] = min(a[2], lo)
            a[3] = max(a[3], hi)
    return [
        DayRow(day, sensor, int(a[0]), a[2], a[1] / a[0], a[3])
        for (sensor, day), a in sorted(acc.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]


_EXCURSIONS_SQL = """
SELECT excursion_id, sensor_id, kind, level, started_at, ended_at, peak_value FROM excursions
WHERE location_id = %(loc)s AND started_at < %(end)s AND (ended_at IS NULL OR ended_at > %(start)s)
ORDER BY started_at, excursion_id
"""


# the same dispositions as the chart's annotations (cloud.web.history)
_DISPOSITIONS_SQL = """
SELECT entry_id FROM ledger_entries
WHERE movement IN ('release', 'reject') AND (from_location = %(loc)s OR to_location = %(loc)s)
  AND effective_at >= %(start)s AND effective_at < %(end)s
"""


async def unit_record(
    conn: AsyncConnection[TupleRow],
    location_id: str,
    *,
    start: datetime,
    end: datetime,
    default_silence: timedelta,
) -> UnitRecord:
    """The record of ``location_id`` over [start, end)."""
    if end <= start:
        raise ReportInputError("end must be after start")
    if end - start > MAX_SPAN:
        raise ReportInputError(f"at most {MAX_SPAN.days} days at a time")
    unit = await unit_info(conn, location_id, default_silence=default_silence)
    if unit is None:
        raise ReportInputError(f"no storage unit {location_id!r}")
    h = await history(conn, unit, start=start, end=end)
    cur = await conn.execute(_EXCURSIONS_SQL, {"loc": location_id, "start": start, "end": end})
    excursions = [ExcursionRow(*r) for r in await cur.fetchall()]
    overdue = await flagged(conn, unit.sensors, start=start, end=end, zone=unit.timezone)
    cur = await conn.execute(_DISPOSITIONS_SQL, {"loc": location_id, "start": start, "end": end})
    entries = [int(r[0]) for r in await cur.fetchall()]
    by_entry = await signatures_for_entries(conn, entries) if entries else {}
    signed = {s.signature_id: s for sigs in by_entry.values() for s in sigs}
    return UnitRecord(h, daily_rows(h), excursions, overdue,
                      sorted(signed.values(), key=lambda s: s.signed_at))  # fmt: skip
