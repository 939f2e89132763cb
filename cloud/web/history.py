"""A storage unit's temperature history for its chart: the right resolution for the range.

A chart is at most a few thousand pixels wide, so the range decides where the points come from:
raw readings up to ``RAW_UP_TO`` (hours, a day or two), hourly rollups (``readings_hourly``) up
to ``HOURLY_UP_TO`` (weeks), daily rollups (``readings_daily``, the site's local days) beyond
(a year is 365 rows per sensor). The rollups are kept by the rollup job (``cloud.jobs.rollups``)
and carry min/mean/max, so a warm hour inside a year still shows as the day's maximum.

Gaps are facts, not noise: where no sensor of the unit reported for longer than the unit's
silence interval (raw) or for a whole bucket (rollups), the interval is listed in ``gaps`` and
the series carry a ``None`` there, so the chart breaks its line instead of drawing across.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.calibration.store import flagged
from cloud.coldchain.mkt import DELTA_H_OVER_R, KELVIN
from cloud.spreadsheet import csv_writer, text_cell

Resolution = Literal["raw", "hourly", "daily"]
RAW_UP_TO = timedelta(days=2)
HOURLY_UP_TO = timedelta(days=62)
MAX_SPAN = timedelta(days=3 * 366)
"""The longest range one request may ask for (three years of daily rows per sensor)."""
MAX_RAW_ROWS = 200_000
"""Raw readings per request at most (two days at one reading a second is 172 800); beyond it
the hourly rollups are served instead of a silently cut series."""


@dataclass(frozen=True)
class UnitInfo:
    location_id: str
    name: str
    kind: str
    site_name: str
    timezone: str
    profile_name: str | None
    action_low: float | None
    action_high: float | None
    alert_low: float | None
    alert_high: float | None
    silence_after: timedelta
    sensors: list[str]
    sensor_names: dict[str, str] = field(default_factory=dict)
    """Sensors' descriptions where set (the page shows them instead of the ids)."""


@dataclass
class SensorSeries:
    sensor_id: str
    time: list[datetime] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    low: list[float | None] = field(default_factory=list)
    mean: list[float | None] = field(default_factory=list)
    high: list[float | None] = field(default_factory=list)


@dataclass(frozen=True)
class Excursion:
    start: datetime
    end: datetime | None
    level: str
    kind: str


@dataclass(frozen=True)
class Annotation:
    """Something people did or saw at the unit: an instant, or a window when ``end`` is set."""

    at: datetime
    end: datetime | None
    kind: Literal["alert", "acknowledged", "maintenance", "disposition", "calibration", "closure"]
    """``closure``: an excursion's root cause and corrective action, at the excursion's end."""
    text: str


@dataclass(frozen=True)
class Stats:
    samples: int
    low: float | None
    high: float | None
    mean: float | None
    mkt: float | None


@dataclass(frozen=True)
class History:
    unit: UnitInfo
    start: datetime
    end: datetime
    resolution: Resolution
    series: list[SensorSeries]
    gaps: list[tuple[datetime, datetime]]
    excursions: list[Excursion]
    stats: Stats
    annotations: list[Annotation] = field(default_factory=list)


def resolution_for(span: timedelta) -> Resolution:
    """Where a chart of ``span`` takes its points from.

    >>> resolution_for(timedelta(hours=6)), resolution_for(timedelta(days=7))
    ('raw', 'hourly')
    >>> resolution_for(timedelta(days=365))
    'daily'
    """
    if span <= RAW_UP_TO:
        return "raw"
    return "hourly" if span <= HOURLY_UP_TO else "daily"


_UNIT_SQL = """
SELECT l.location_id, l.name, l.kind, s.name, s.timezone, p.name, p.action_low, p.action_high,
       p.alert_low, p.alert_high, coalesce(p.silence_after, %(silence)s),
       ARRAY(SELECT sensor_id FROM sensors WHERE location_id = l.location_id
             UNION SELECT device_id FROM devices WHERE location_id = l.location_id
                                                  AND device_type = 'sensor'
             ORDER BY 1),
       (SELECT coalesce(jsonb_object_agg(sensor_id, description), '{}') FROM sensors
        WHERE location_id = l.location_id AND description IS NOT NULL)
FROM locations l JOIN sites s USING (site_id)
LEFT JOIN storage_profiles p ON p.profile_id = l.profile_id
WHERE l.location_id = %(loc)s
"""


async def unit_info(
    conn: AsyncConnection[TupleRow], location_id: str, *, default_silence: timedelta
) -> UnitInfo | None:
    cur = await conn.execute(_UNIT_SQL, {"loc": location_id, "silence": default_silence})
    row = await cur.fetchone()
    if row is None:
        return None
    return UnitInfo(
        location_id=row[0],
        name=row[1],
        kind=row[2],
        site_name=row[3],
        timezone=row[4],
        profile_name=row[5],
        action_low=row[6],
        action_high=row[7],
        alert_low=row[8],
        alert_high=row[9],
        silence_after=row[10],
        sensors=list(row[11]),
        sensor_names={str(k): str(v) for k, v in row[12].items()},
    )


_RAW_SQL = """
SELECT sensor_id, time, value FROM readings
WHERE sensor_id = ANY(%(sensors)s) AND time >= %(start)s AND time < %(end)s
  AND quality <> 'bad' AND value IS NOT NULL
ORDER BY sensor_id, time LIMIT %(limit)s
"""
# buckets that overlap the range: the one the range starts in too (a local day lasts 23-25 h)
_ROLLUP_SQL = """
SELECT sensor_id, bucket, samples, min_value, avg_value, max_value FROM {table}
WHERE sensor_id = ANY(%(sensors)s) AND bucket > %(start)s - %(width)s AND bucket < %(end)s
ORDER BY sensor_id, bucket
"""
_EXCURSIONS_SQL = """
SELECT started_at, ended_at, level, kind FROM excursions
WHERE location_id = %(loc)s AND started_at < %(end)s AND (ended_at IS NULL OR ended_at > %(start)s)
ORDER BY started_at
"""


async def history(
    conn: AsyncConnection[TupleRow], unit: UnitInfo, *, start: datetime, end: datetime
) -> History:
    """The unit's readings in [start, end) at the resolution the span calls for."""
    resolution = resolution_for(end - start)
    params = {"sensors": unit.sensors, "start": start, "end": end, "limit": MAX_RAW_ROWS + 1}
    by_sensor = {s: SensorSeries(s) for s in unit.sensors}
    if resolution == "raw":
        cur = await conn.execute(_RAW_SQL, params)
        rows = await cur.fetchall()
        if len(rows) > MAX_RAW_ROWS:
            # more readings than a chart can use (many fast sensors): hourly rather than cut
            resolution = "hourly"
        else:
            for sensor, t, value in rows:
                _append(by_sensor[sensor], t, 1, (value, value, value))
    if resolution != "raw":
        table = "readings_hourly" if resolution == "hourly" else "readings_daily"
        width = timedelta(hours=1) if resolution == "hourly" else timedelta(hours=25)
        cur = await conn.execute(
            _ROLLUP_SQL.format(table=table).encode(), {**params, "width": width}
        )
        for sensor, t, n, lo, mean, hi in await cur.fetchall():
            _append(by_sensor[sensor], t, int(n), (lo, mean, hi))
    step = {"raw": None, "hourly": timedelta(hours=1), "daily": timedelta(days=1)}[resolution]
    # a daily bucket lasts 23 to 25 hours (local days across a DST change)
    slack = {"raw": unit.silence_after, "hourly": timedelta(0), "daily": timedelta(hours=1)}
    series = [_break_gaps(s, step, slack[resolution]) for s in by_sensor.values()]
    cur = await conn.execute(_EXCURSIONS_SQL, {"loc": unit.location_id, "start": start, "end": end})
    excursions = [Excursion(r[0], r[1], r[2], r[3]) for r in await cur.fetchall()]
    gaps = _gaps(series, start=start, end=end, step=step, slack=slack[resolution])
    notes = await unit_annotations(conn, unit.location_id, start=start, end=end)
    # readings of a sensor whose calibration was overdue (or failed) are flagged (issue 17.5)
    flags = await flagged(conn, unit.sensors, start=start, end=end, zone=unit.timezone)
    notes += [
        Annotation(f.start, f.end, "calibration",
                   f"sensor {unit.sensor_names.get(f.sensor_id, f.sensor_id)}: calibration"
                   f" {f.reason}, its readings are flagged")
        for f in flags
    ]  # fmt: skip
    return History(unit, start, end, resolution, series, gaps, excursions, _stats(series), notes)


MAX_ANNOTATIONS = 500
"""Per kind and request: a year of a unit with a door opened hourly stays readable and small."""
_ANNOTATION_SQL = """
(SELECT at, NULL::timestamptz, 'alert', message FROM alerts
 WHERE location_id = %(loc)s AND at >= %(start)s AND at < %(end)s
   AND kind IN ('anomaly', 'early_warning', 'no_data')
 ORDER BY at LIMIT %(n)s)
UNION ALL
(SELECT acknowledged_at, NULL, 'acknowledged',
        'acknowledged by ' || acknowledged_by
        || CASE WHEN count(*) > 1 THEN ' (' || count(*) || ' alerts)' ELSE '' END
        || coalesce(': ' || min(ack_note), '')
 FROM alerts
 WHERE location_id = %(loc)s AND acknowledged_at >= %(start)s AND acknowledged_at < %(end)s
 GROUP BY acknowledged_at, acknowledged_by ORDER BY acknowledged_at LIMIT %(n)s)
UNION ALL
(SELECT starts_at, least(ends_at, coalesce(cancelled_at, ends_at)), 'maintenance',
        kind || ' (alarms suppressed): ' || reason || ', by ' || created_by
 FROM alarm_suppressions
 WHERE location_id = %(loc)s AND starts_at < %(end)s
   AND least(ends_at, coalesce(cancelled_at, ends_at)) > %(start)s
   AND (cancelled_at IS NULL OR cancelled_at > starts_at)
 ORDER BY starts_at LIMIT %(n)s)
UNION ALL
(SELECT e.effective_at, NULL, 'disposition',
        CASE e.movement WHEN 'release' THEN 'released' ELSE 'rejected' END || ' lot '
        || l.lot_number || ' by ' || e.actor || coalesce(': ' || e.reason, '')
 FROM ledger_entries e JOIN lots l USING (lot_id)
 WHERE e.movement IN ('release', 'reject')
   AND (e.from_location = %(loc)s OR e.to_location = %(loc)s)
   AND e.effective_at >= %(start)s AND e.effective_at < %(end)s
 ORDER BY e.effective_at LIMIT %(n)s)
UNION ALL
(SELECT x.ended_at, NULL, 'closure',
        'excursion closed by ' || c.closed_by || ': root cause ' || replace(c.root_cause, '_', ' ')
        || coalesce(' (' || c.root_cause_detail || ')', '')
        || coalesce('; corrective action ' || replace(c.corrective_action, '_', ' '), '')
        || coalesce(' (' || c.corrective_action_detail || ')', '')
 FROM excursion_closures c JOIN excursions x USING (excursion_id)
 WHERE x.location_id = %(loc)s AND x.ended_at >= %(start)s AND x.ended_at < %(end)s
 ORDER BY x.ended_at LIMIT %(n)s)
ORDER BY 1
"""


async def unit_annotations(
    conn: AsyncConnection[TupleRow], location_id: str, *, start: datetime, end: datetime
) -> list[Annotation]:
    """Warnings (door-open patterns, early warnings, no data), acknowledgements, maintenance
    windows (``alarm_suppressions``), QA dispositions of stock at the unit and the closures of
    its excursions (root cause and corrective action, at the excursion's end), in the range."""
    cur = await conn.execute(
        _ANNOTATION_SQL, {"loc": location_id, "start": start, "end": end, "n": MAX_ANNOTATIONS}
    )
    return [Annotation(r[0], r[1], r[2], r[3]) for r in await cur.fetchall()]


def _append(
    s: SensorSeries, t: datetime, n: int, values: tuple[float | None, float | None, float | None]
) -> None:
    lo, mean, hi = values
    s.time.append(t)
    s.samples.append(n)
    s.low.append(lo)
    s.mean.append(mean)
    s.high.append(hi)


def _covered(s: SensorSeries, step: timedelta | None) -> list[tuple[datetime, datetime]]:
    """The time each point stands for: a reading its instant, a bucket its width."""
    width = step or timedelta(0)
    return [(t, t + width) for t, n in zip(s.time, s.samples, strict=True) if n]


def _break_gaps(s: SensorSeries, step: timedelta | None, slack: timedelta) -> SensorSeries:
    """A ``None`` point inside every hole of one sensor, so its line is not drawn across."""
    out = SensorSeries(s.sensor_id)
    previous: datetime | None = None
    for i, t in enumerate(s.time):
        if previous is not None and t - previous > (step or timedelta(0)) + slack:
            hole = previous + (t - previous) / 2
            _append(out, hole, 0, (None, None, None))
        _append(out, t, s.samples[i], (s.low[i], s.mean[i], s.high[i]))
        previous = t
    return out


def _gaps(
    series: Sequence[SensorSeries],
    *,
    start: datetime,
    end: datetime,
    step: timedelta | None,
    slack: timedelta,
) -> list[tuple[datetime, datetime]]:
    """Intervals of [start, end) where no sensor of the unit has data, longer than ``slack``."""
    covered = sorted(c for s in series for c in _covered(s, step))
    gaps: list[tuple[datetime, datetime]] = []
    cursor = start
    for a, b in covered:
        if a - cursor > slack:
            gaps.append((cursor, a))
        cursor = max(cursor, b)
    if end - cursor > slack:
        gaps.append((cursor, end))
    return gaps


def _stats(series: Sequence[SensorSeries]) -> Stats:
    """Min, max, sample-weighted mean and MKT of the points shown.

    On rollups the MKT is taken over the bucket means weighted by their sample counts: within
    an hour a unit's temperature moves little, so this differs from the MKT of the readings by
    hundredths of a degree (the lot page's MKT is computed from the readings themselves).
    """
    n = 0
    total = 0.0
    arrhenius = 0.0
    lows: list[float] = []
    highs: list[float] = []
    for s in series:
        for count, lo, mean, hi in zip(s.samples, s.low, s.mean, s.high, strict=True):
            if not count or mean is None or lo is None or hi is None:
                continue
            n += count
            total += count * mean
            arrhenius += count * math.exp(-DELTA_H_OVER_R / (mean + KELVIN))
            lows.append(lo)
            highs.append(hi)
    if not n:
        return Stats(0, None, None, None, None)
    mkt = DELTA_H_OVER_R / -math.log(arrhenius / n) - KELVIN
    return Stats(n, min(lows), max(highs), total / n, mkt)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _num(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def as_json(h: History) -> dict[str, object]:
    """The chart's data: times in epoch seconds (what uPlot plots), limits, gaps, excursions."""
    u = h.unit
    return {
        "location_id": u.location_id,
        "name": u.name,
        "timezone": u.timezone,
        "start": h.start.timestamp(),
        "end": h.end.timestamp(),
        "resolution": h.resolution,
        "limits": {
            "action_low": u.action_low,
            "action_high": u.action_high,
            "alert_low": u.alert_low,
            "alert_high": u.alert_high,
        },
        "series": [
            {
                "sensor_id": s.sensor_id,
                "time": [t.timestamp() for t in s.time],
                "samples": s.samples,
                "min": [_num(v) for v in s.low],
                "mean": [_num(v) for v in s.mean],
                "max": [_num(v) for v in s.high],
            }
            for s in h.series
        ],
        "gaps": [[a.timestamp(), b.timestamp()] for a, b in h.gaps],
        "excursions": [
            {
                "start": x.start.timestamp(),
                "end": None if x.end is None else x.end.timestamp(),
                "level": x.level,
                "kind": x.kind,
            }
            for x in h.excursions
        ],
        "annotations": [
            {
                "at": a.at.timestamp(),
                "end": None if a.end is None else a.end.timestamp(),
                "kind": a.kind,
                "text": a.text,
            }
            for a in h.annotations
        ],
        "stats": {
            "samples": h.stats.samples,
            "min": _num(h.stats.low),
            "max": _num(h.stats.high),
            "mean": _num(h.stats.mean),
            "mkt": _num(h.stats.mkt),
        },
    }


def as_csv(h: History) -> str:
    """The points of the chart, one row per reading (raw) or bucket (rollups); UTC times.

    Spreadsheet formula injection is not possible: every cell is a number, a time, or a sensor
    id (ids starting with ``=+-@`` get a leading apostrophe).
    """
    out = io.StringIO()
    w = csv_writer(out)
    if h.resolution == "raw":
        w.writerow(["time", "sensor_id", "value_degC"])
    else:
        w.writerow(["bucket_start", "sensor_id", "samples", "min_degC", "mean_degC", "max_degC"])
    for s in h.series:
        sensor = text_cell(s.sensor_id)
        for i, t in enumerate(s.time):
            if not s.samples[i]:
                continue  # a gap marker, not data
            if h.resolution == "raw":
                w.writerow([_iso(t), sensor, repr(s.mean[i])])
            else:
                w.writerow(
                    [
                        _iso(t),
                        sensor,
                        s.samples[i],
                        repr(s.low[i]),
                        repr(s.mean[i]),
                        repr(s.high[i]),
                    ]
                )
    return out.getvalue()
