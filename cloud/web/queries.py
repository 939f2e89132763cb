"""What the dashboard shows, read from the same tables as the API (read-only queries).

Every function takes a connection and returns frozen values; the router renders them. Times
are compared with ``now`` passed in by the caller (the router uses the database clock), so a
page is one consistent picture.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.web.svg import Point

UnitState = Literal["excursion", "alert", "silent", "ok", "unknown"]
"""Status colour of a storage unit: red, amber, grey (silent or no data), green."""


@dataclass(frozen=True)
class Unit:
    site_id: str
    site_name: str
    location_id: str
    kind: str
    name: str
    profile_name: str | None
    low: float | None
    high: float | None
    sensor_id: str | None
    last_time: datetime | None
    last_value: float | None
    state: UnitState
    detail: str
    trend: list[Point]
    silence_after: timedelta = timedelta(minutes=15)
    """Data older than this is stale (the page greys the card when the stream is lost)."""
    timezone: str = "UTC"
    """The site's IANA time zone."""


_UNITS_SQL = """
SELECT l.site_id, s.name, l.location_id, l.kind, l.name, p.name, p.action_low, p.action_high,
       coalesce(p.silence_after, %(silence)s), sen.sensor_id, last.time, last.value,
       (SELECT bool_or(e.level = 'action') FROM excursions e
         WHERE e.location_id = l.location_id AND e.ended_at IS NULL AND e.kind <> 'no_data'),
       EXISTS (SELECT 1 FROM excursions e WHERE e.location_id = l.location_id
               AND e.ended_at IS NULL AND e.kind = 'no_data')
         OR EXISTS (SELECT 1 FROM device_silences d WHERE d.device_id = sen.sensor_id
                    AND d.ended_at IS NULL),
       EXISTS (SELECT 1 FROM alerts a WHERE a.location_id = l.location_id
               AND a.kind = 'early_warning' AND a.acknowledged_at IS NULL
               AND a.at > %(now)s - interval '2 hours'),
       s.timezone
FROM locations l
JOIN sites s USING (site_id)
LEFT JOIN storage_profiles p ON p.profile_id = l.profile_id
LEFT JOIN LATERAL (
    SELECT sensor_id FROM sensors WHERE location_id = l.location_id
    UNION SELECT device_id FROM devices WHERE device_type = 'sensor'
                                         AND location_id = l.location_id
    ORDER BY 1 LIMIT 1) sen ON true
LEFT JOIN LATERAL (
    SELECT r.time, r.value FROM readings r
    WHERE r.sensor_id = sen.sensor_id AND r.unit = 'degC' AND r.value IS NOT NULL
      AND r.quality <> 'bad' AND r.time <= %(now)s AND r.time > %(now)s - %(window)s
    ORDER BY r.time DESC LIMIT 1) last ON true
WHERE l.kind IN ('fridge', 'freezer', 'room') AND (%(site)s::text IS NULL OR l.site_id = %(site)s)
ORDER BY l.site_id, l.kind, l.location_id
"""


def unit_state(
    *,
    action_open: bool | None,
    silent: bool,
    warning: bool,
    last_time: datetime | None,
    silence_after: timedelta,
    now: datetime,
) -> tuple[UnitState, str]:
    """The status colour and its reason; an excursion outranks silence, silence outranks "ok".

    >>> from datetime import UTC, datetime, timedelta
    >>> now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    >>> unit_state(action_open=None, silent=False, warning=False,
    ...            last_time=now - timedelta(hours=1), silence_after=timedelta(minutes=15),
    ...            now=now)
    ('silent', 'no reading for 60 min')
    """
    if action_open:
        return "excursion", "out of range: stock at risk"
    if action_open is False:
        return "alert", "outside its usual range"
    if last_time is None:
        return "unknown", "no reading in 24 h"
    if silent or now - last_time > silence_after:
        minutes = (now - last_time).total_seconds() / 60
        return "silent", f"no reading for {minutes:.0f} min"
    if warning:
        return "alert", "limit will be reached soon"
    return "ok", "in range"


async def units(
    conn: AsyncConnection[TupleRow],
    *,
    now: datetime,
    window: timedelta,
    bucket: timedelta,
    default_silence: timedelta,
    site_id: str | None = None,
) -> list[Unit]:
    """Storage units with their current temperature, status and a ``window`` trend."""
    cur = await conn.execute(
        _UNITS_SQL,
        {"now": now, "window": window, "silence": default_silence, "site": site_id},
    )
    rows = await cur.fetchall()
    sensors = [str(r[9]) for r in rows if r[9] is not None]
    trends = await trend(conn, sensors, now=now, window=window, bucket=bucket)
    out: list[Unit] = []
    for r in rows:
        state, detail = unit_state(
            action_open=r[12], silent=bool(r[13]), warning=bool(r[14]), last_time=r[10],
            silence_after=r[8], now=now,
        )  # fmt: skip
        out.append(
            Unit(
                site_id=r[0],
                site_name=r[1],
                location_id=r[2],
                kind=r[3],
                name=r[4],
                profile_name=r[5],
                low=r[6],
                high=r[7],
                sensor_id=r[9],
                last_time=r[10],
                last_value=r[11],
                state=state,
                detail=detail,
                trend=trends.get(str(r[9]), []) if r[9] is not None else [],
                silence_after=r[8],
                timezone=r[15],
            )
        )
    return out


async def trend(
    conn: AsyncConnection[TupleRow],
    sensor_ids: list[str],
    *,
    now: datetime,
    window: timedelta,
    bucket: timedelta,
) -> dict[str, list[Point]]:
    """Mean per ``bucket`` over ``window`` for each sensor, with ``None`` for empty buckets.

    ``date_bin`` (PostgreSQL 14+) rather than ``time_bucket`` keeps this working without
    TimescaleDB.
    """
    if not sensor_ids:
        return {}
    cur = await conn.execute(
        "SELECT sensor_id, date_bin(%(b)s, time, TIMESTAMPTZ '2000-01-01'), avg(value)"
        " FROM readings WHERE sensor_id = ANY(%(s)s) AND time > %(now)s - %(w)s"
        " AND time <= %(now)s AND value IS NOT NULL AND quality <> 'bad' AND unit = 'degC'"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        {"b": bucket, "s": sensor_ids, "now": now, "w": window},
    )
    found: dict[str, dict[datetime, float]] = defaultdict(dict)
    for sensor, at, value in await cur.fetchall():
        found[str(sensor)][at] = float(value)
    out: dict[str, list[Point]] = {}
    for sensor, buckets in found.items():
        first, last = min(buckets), max(buckets)
        points: list[Point] = []
        at = first
        while at <= last:
            points.append((at, buckets.get(at)))
            at += bucket
        out[sensor] = points
    return out


@dataclass(frozen=True)
class LotName:
    lot_id: int
    product: str
    lot_number: str

    def __str__(self) -> str:
        return f"{self.product}, lot {self.lot_number}"


@dataclass(frozen=True)
class Excursion:
    excursion_id: int
    location_id: str
    location_name: str
    sensor_id: str
    kind: str
    level: str
    started_at: datetime
    peak_value: float | None
    quarantined_lots: list[int]
    unacknowledged: list[int]
    acknowledged_by: str | None
    sensor_name: str | None = None
    """The sensor's description, where one is set."""
    site_id: str = ""
    location_kind: str = ""
    lots: tuple[LotName, ...] = ()
    """The quarantined lots by product and lot number."""


async def open_excursions(conn: AsyncConnection[TupleRow]) -> list[Excursion]:
    """Open excursions, worst first, with their alerts still waiting for an acknowledgement."""
    cur = await conn.execute(
        "SELECT e.excursion_id, e.location_id, l.name, e.sensor_id, e.kind, e.level,"
        " e.started_at, e.peak_value, e.quarantined_lots,"
        " coalesce(array_agg(a.alert_id ORDER BY a.alert_id)"
        "   FILTER (WHERE a.alert_id IS NOT NULL AND a.acknowledged_at IS NULL), '{}'),"
        " max(a.acknowledged_by),"
        " (SELECT s.description FROM sensors s WHERE s.sensor_id = e.sensor_id), l.site_id,"
        " l.kind,"
        " (SELECT coalesce(jsonb_agg(jsonb_build_array(lo.lot_id, p.name, lo.lot_number)"
        "   ORDER BY lo.lot_id), '[]') FROM lots lo JOIN products p USING (gtin)"
        "   WHERE lo.lot_id = ANY(e.quarantined_lots))"
        " FROM excursions e JOIN locations l USING (location_id)"
        " LEFT JOIN alerts a ON a.excursion_id = e.excursion_id"
        " WHERE e.ended_at IS NULL GROUP BY e.excursion_id, l.name, l.site_id, l.kind"
        " ORDER BY e.level = 'action' DESC, e.started_at"
    )
    return [
        replace(
            Excursion(*row[:14]),
            lots=tuple(LotName(int(i), str(p), str(n)) for i, p, n in row[14]),
        )
        for row in await cur.fetchall()
    ]


@dataclass(frozen=True)
class Alert:
    alert_id: int
    raised_at: datetime
    at: datetime
    kind: str
    severity: str
    location_id: str | None
    message: str
    location_name: str | None = None


async def waiting_alerts(conn: AsyncConnection[TupleRow], *, limit: int = 50) -> list[Alert]:
    """Unacknowledged alerts that are not about an excursion (early warnings, anomalies)."""
    cur = await conn.execute(
        "SELECT a.alert_id, a.raised_at, a.at, a.kind, a.severity, a.location_id, a.message,"
        " l.name FROM alerts a LEFT JOIN locations l USING (location_id)"
        " WHERE a.acknowledged_at IS NULL AND a.kind IN ('early_warning', 'anomaly', 'no_data')"
        " ORDER BY a.raised_at DESC, a.alert_id DESC LIMIT %s",
        (limit,),
    )
    return [Alert(*row) for row in await cur.fetchall()]


@dataclass(frozen=True)
class QuarantinedLot:
    lot_id: int
    gtin: str
    product: str
    lot_number: str
    expiry: Any
    quantity: int
    locations: list[str]
    since: datetime | None
    reason: str | None
    excursion: tuple[str, str, str, datetime] | None = None
    """The excursion that quarantined it (kind, level, location name, start), if one did."""
    open_excursion: bool = False
    """An excursion affecting it is still open: a release needs an explicit confirmation."""


async def quarantined_lots(conn: AsyncConnection[TupleRow]) -> list[QuarantinedLot]:
    """Lots with stock in quarantine, waiting for a QA disposition."""
    cur = await conn.execute(
        "SELECT l.lot_id, l.gtin, p.name, l.lot_number, l.expiry, sum(b.quantity)::int,"
        " array_agg(DISTINCT coalesce(lc.name, b.location_id)),"
        " (SELECT max(effective_at) FROM ledger_entries q WHERE q.lot_id = l.lot_id"
        "   AND q.movement = 'quarantine'),"
        " (SELECT q.reason FROM ledger_entries q WHERE q.lot_id = l.lot_id"
        "   AND q.movement = 'quarantine' ORDER BY q.entry_id DESC LIMIT 1),"
        " (SELECT jsonb_build_array(x.kind, x.level, xl.name, x.started_at)"
        "   FROM ledger_entries q JOIN excursions x"
        "     ON q.reference = 'excursion:' || x.excursion_id::text"
        "   JOIN locations xl ON xl.location_id = x.location_id"
        "   WHERE q.lot_id = l.lot_id AND q.movement = 'quarantine'"
        "   ORDER BY q.entry_id DESC LIMIT 1),"
        " EXISTS (SELECT 1 FROM excursions x WHERE x.ended_at IS NULL"
        "   AND (l.lot_id = ANY(x.quarantined_lots) OR x.location_id IN (SELECT o.location_id"
        "        FROM balances o WHERE o.lot_id = l.lot_id AND o.quantity > 0)))"
        " FROM balances b JOIN lots l USING (lot_id) JOIN products p USING (gtin)"
        " LEFT JOIN locations lc ON lc.location_id = b.location_id"
        " WHERE b.status = 'quarantined' AND b.quantity > 0"
        " GROUP BY l.lot_id, p.name ORDER BY 8 NULLS LAST, l.lot_id"
    )
    return [
        replace(
            QuarantinedLot(*row[:9]),
            excursion=None
            if row[9] is None
            else (row[9][0], row[9][1], row[9][2], datetime.fromisoformat(row[9][3])),
            open_excursion=bool(row[10]),
        )
        for row in await cur.fetchall()
    ]


@dataclass(frozen=True)
class Receipt:
    receipt_id: int
    at: datetime
    door_id: str
    direction: str
    outcome: str
    received: int
    asn_references: list[str]
    short: int
    over: int
    unexpected: int
    unconfirmed: int = 0  # tagged units received per a read container's label, tag not seen
    door_name: str | None = None


async def receipts_since(
    conn: AsyncConnection[TupleRow], since: datetime, *, limit: int = 100
) -> list[Receipt]:
    """Dock-door receipts since ``since`` (the start of today), newest first."""
    cur = await conn.execute(
        "SELECT r.receipt_id, r.at, r.door_id, r.direction, r.outcome, r.received,"
        " coalesce((SELECT array_agg(a.reference ORDER BY a.reference) FROM asns a"
        "   WHERE a.asn_id = ANY(r.asn_ids)), '{}'),"
        " (SELECT coalesce(sum(jsonb_array_length(v)), 0) FROM"
        "   jsonb_each(coalesce(r.summary->'short', '{}'::jsonb)) AS s(k, v))::int,"
        " jsonb_array_length(coalesce(r.summary->'over', '[]'::jsonb)),"
        " jsonb_array_length(coalesce(r.summary->'unexpected', '[]'::jsonb)),"
        " (SELECT coalesce(sum(jsonb_array_length(v)), 0) FROM"
        "   jsonb_each(coalesce(r.summary->'unconfirmed', '{}'::jsonb)) AS c(k, v))::int,"
        " (SELECT d.name FROM locations d WHERE d.location_id = r.door_id)"
        " FROM receipts r WHERE r.at >= %s ORDER BY r.at DESC, r.receipt_id DESC LIMIT %s",
        (since, limit),
    )
    return [Receipt(*row) for row in await cur.fetchall()]


async def fingerprint(conn: AsyncConnection[TupleRow]) -> tuple[object, ...]:
    """Changes whenever anything the overview shows may have changed (cheap: index lookups)."""
    cur = await conn.execute(
        "SELECT (SELECT max(batch_id) FROM ingest_batches WHERE processed_at IS NOT NULL),"
        " (SELECT last_entry_id FROM ledger_head),"
        " (SELECT max(updated_at) FROM excursions),"
        " (SELECT max(alert_id) FROM alerts),"
        " (SELECT max(acknowledged_at) FROM alerts),"
        " (SELECT max(receipt_id) FROM receipts),"
        " (SELECT count(*) FROM device_silences WHERE ended_at IS NULL),"
        " (SELECT max(updated_at) FROM processor_streams),"
        " (SELECT max(updated_at) FROM alarms),"
        " (SELECT max(window_id) FROM alarm_suppressions),"
        " (SELECT max(cancelled_at) FROM alarm_suppressions)"
    )
    row = await cur.fetchone()
    assert row is not None
    return tuple(row)


async def database_now(conn: AsyncConnection[TupleRow]) -> datetime:
    cur = await conn.execute("SELECT now()")
    row = await cur.fetchone()
    assert row is not None
    now: datetime = row[0]
    return now
