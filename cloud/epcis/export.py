"""Reads movements and readings for an EPCIS 2.0 document (inside the caller's transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.epcis.events import (
    VOCABULARY,
    Move,
    SensorSummary,
    document,
    events_from_moves,
    sensor_event,
)
from cloud.ledger.service import lots_at_location


@dataclass(frozen=True)
class Query:
    since: datetime
    until: datetime
    gtin: str | None = None
    lot: str | None = None
    location_id: str | None = None
    sensors: bool = False
    sensor_interval: timedelta = timedelta(hours=1)
    limit: int = 10_000


async def _moves(conn: AsyncConnection[TupleRow], q: Query) -> list[Move]:
    cur = await conn.execute(
        "SELECT e.entry_id, e.movement, e.effective_at, coalesce(e.to_location, e.from_location),"
        " e.epc_uri, e.to_status, e.quantity, l.gtin, l.lot_number, u.parent_uri, e.reference,"
        " e.actor, e.from_location, CASE WHEN e.movement = 'move' AND tl.kind = 'transit'"
        " THEN 'out' WHEN e.movement = 'move' AND fl.kind = 'transit' THEN 'in' END"
        " FROM ledger_entries e JOIN lots l USING (lot_id)"
        " LEFT JOIN units u ON u.epc_uri = e.epc_uri"
        " LEFT JOIN locations fl ON fl.location_id = e.from_location"
        " LEFT JOIN locations tl ON tl.location_id = e.to_location"
        " WHERE e.effective_at >= %(since)s AND e.effective_at < %(until)s"
        " AND e.movement = ANY(%(movements)s)"
        " AND (%(gtin)s::text IS NULL OR l.gtin = %(gtin)s)"
        " AND (%(lot)s::text IS NULL OR l.lot_number = %(lot)s)"
        " AND (%(loc)s::text IS NULL OR e.to_location = %(loc)s OR e.from_location = %(loc)s)"
        " ORDER BY e.effective_at, e.entry_id LIMIT %(limit)s",
        {
            "since": q.since,
            "until": q.until,
            "movements": list(VOCABULARY),
            "gtin": q.gtin,
            "lot": q.lot,
            "loc": q.location_id,
            "limit": q.limit,
        },
    )
    return [
        Move(
            int(r[0]),
            str(r[1]),
            cast(datetime, r[2]),
            str(r[3]),
            r[4],
            r[5],
            int(r[6]),
            str(r[7]),
            str(r[8]),
            r[9],
            r[10],
            str(r[11]),
            r[12],
            r[13],
        )
        for r in await cur.fetchall()
    ]


async def _sensor_summaries(conn: AsyncConnection[TupleRow], q: Query) -> list[SensorSummary]:
    cur = await conn.execute(
        "SELECT r.sensor_id, s.location_id,"
        " date_bin(%(step)s, r.time, '2000-01-01T00:00:00Z') AS bucket,"
        " count(*), min(r.value), max(r.value), avg(r.value)"
        " FROM readings r JOIN sensors s USING (sensor_id)"
        " WHERE r.time >= %(since)s AND r.time < %(until)s AND r.value IS NOT NULL"
        " AND r.quality <> 'bad' AND r.unit = 'degC' AND s.location_id IS NOT NULL"
        " AND (%(loc)s::text IS NULL OR s.location_id = %(loc)s)"
        " GROUP BY 1, 2, 3 ORDER BY 3, 1 LIMIT %(limit)s",
        {
            "step": q.sensor_interval,
            "since": q.since,
            "until": q.until,
            "loc": q.location_id,
            "limit": q.limit,
        },
    )
    rows = await cur.fetchall()
    held: dict[tuple[str, datetime], tuple[tuple[str, str], ...]] = {}
    found: list[SensorSummary] = []
    for sensor, loc, bucket, count, lo, hi, mean in rows:
        start = cast(datetime, bucket)
        # Compared before adding: a bucket near 9999-12-31 plus the interval would overflow.
        end = q.until if start >= q.until - q.sensor_interval else start + q.sensor_interval
        if (loc, end) not in held:
            held[loc, end] = await _lot_identities(conn, await lots_at_location(conn, loc, end))
        found.append(
            SensorSummary(
                str(sensor),
                str(loc),
                max(start, q.since),
                end,
                int(count),
                float(lo),
                float(hi),
                float(mean),
                held[loc, end],
            )
        )
    return found


async def _lot_identities(
    conn: AsyncConnection[TupleRow], lot_ids: list[int]
) -> tuple[tuple[str, str], ...]:
    cur = await conn.execute(
        "SELECT gtin, lot_number FROM lots WHERE lot_id = ANY(%s) ORDER BY gtin, lot_number",
        (lot_ids,),
    )
    return tuple((str(g), str(n)) for g, n in await cur.fetchall())


async def _transit_sensors(
    conn: AsyncConnection[TupleRow], transits: list[str]
) -> dict[str, list[SensorSummary]]:
    """Per transit location, each logger's readings over the whole trip, summarised."""
    cur = await conn.execute(
        "SELECT s.location_id, r.sensor_id, min(r.time), max(r.time), count(*), min(r.value),"
        " max(r.value), avg(r.value) FROM readings r JOIN sensors s USING (sensor_id)"
        " WHERE s.location_id = ANY(%s) AND r.value IS NOT NULL AND r.quality <> 'bad'"
        " AND r.unit = 'degC' GROUP BY 1, 2 ORDER BY 1, 2",
        (transits,),
    )
    out: dict[str, list[SensorSummary]] = {}
    for loc, sensor, first, last, count, lo, hi, mean in await cur.fetchall():
        out.setdefault(str(loc), []).append(
            SensorSummary(
                str(sensor), str(loc), first, last, int(count), float(lo), float(hi),
                float(mean), (),
            )
        )  # fmt: skip
    return out


async def export(conn: AsyncConnection[TupleRow], q: Query) -> dict[str, Any]:
    """An EPCISDocument with the movements (and, if asked, sensor reports) of the window."""
    moves = await _moves(conn, q)
    transits = sorted({m.from_location for m in moves if m.transit == "in" and m.from_location})
    events = events_from_moves(moves, await _transit_sensors(conn, transits))
    if q.sensors:
        events += [sensor_event(s) for s in await _sensor_summaries(conn, q)]
        events.sort(key=lambda e: (e["eventTime"], e["eventID"]))
    return document(events, datetime.now(UTC))
