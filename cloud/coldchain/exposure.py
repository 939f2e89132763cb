"""Loads what a lot's exposure needs from the database and computes it with ``correlation``.

The stays come from the ledger (``lot_stays``); the readings are those of the sensors mounted at
each location, clipped to the stay; the excursions are those of those locations that overlap a
stay. A lot released after an excursion keeps all of it: nothing here looks at the lot status.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.coldchain import TraceTooLongError
from cloud.coldchain.correlation import Exposure, Stay, exposure
from cloud.coldchain.profiles import StorageProfile
from cloud.coldchain.store import PROFILE_COLUMNS, profile_from_row
from cloud.ledger.service import lot_stays


@dataclass(frozen=True)
class LotInfo:
    lot_id: int
    gtin: str
    lot_number: str
    status: str
    profile: StorageProfile
    budget: timedelta


@dataclass(frozen=True)
class ExcursionSummary:
    excursion_id: int
    location_id: str
    sensor_id: str
    kind: str
    level: str
    started_at: datetime
    ended_at: datetime | None
    peak_value: float | None


@dataclass(frozen=True)
class LotExposure:
    lot: LotInfo
    stays: list[Stay]
    exposure: Exposure
    excursions: list[ExcursionSummary]


async def lot_info(conn: AsyncConnection[TupleRow], lot_id: int) -> LotInfo | None:
    cols = ", ".join(f"p.{c.strip()}" for c in PROFILE_COLUMNS.split(","))
    cur = await conn.execute(
        f"SELECT l.lot_id, l.gtin, l.lot_number, l.status, pr.stability_budget, {cols}"
        " FROM lots l JOIN products pr USING (gtin)"
        " JOIN storage_profiles p ON p.profile_id = pr.profile_id WHERE l.lot_id = %s",
        (lot_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return LotInfo(
        lot_id=int(row[0]),
        gtin=str(row[1]),
        lot_number=str(row[2]),
        status=str(row[3]),
        budget=row[4],
        profile=profile_from_row(row[5:]),
    )


async def _readings(
    conn: AsyncConnection[TupleRow], stays: list[Stay], now: datetime
) -> dict[str, list[tuple[datetime, float]]]:
    out: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for stay in stays:
        end = stay.end or now
        # The reading in force at arrival, then everything inside the stay.
        cur = await conn.execute(
            "WITH s AS (SELECT sensor_id FROM sensors WHERE location_id = %(loc)s)"
            " (SELECT r.time, r.value FROM readings r JOIN s USING (sensor_id)"
            "  WHERE r.time <= %(start)s AND r.time > %(start)s - interval '1 day'"
            "  AND r.value IS NOT NULL AND r.quality <> 'bad' AND r.unit = 'degC'"
            "  ORDER BY r.time DESC LIMIT 1)"
            " UNION ALL"
            " (SELECT r.time, r.value FROM readings r JOIN s USING (sensor_id)"
            "  WHERE r.time > %(start)s AND r.time < %(end)s AND r.value IS NOT NULL"
            "  AND r.quality <> 'bad' AND r.unit = 'degC')"
            " ORDER BY 1",
            {"loc": stay.location_id, "start": stay.start, "end": end},
        )
        out[stay.location_id].extend((t, float(v)) for t, v in await cur.fetchall())
    return {loc: sorted(set(samples)) for loc, samples in out.items()}


async def _excursions(
    conn: AsyncConnection[TupleRow], stays: list[Stay], now: datetime
) -> list[ExcursionSummary]:
    found: dict[int, ExcursionSummary] = {}
    for stay in stays:
        cur = await conn.execute(
            "SELECT excursion_id, location_id, sensor_id, kind, level, started_at, ended_at,"
            " peak_value FROM excursions WHERE location_id = %s AND started_at < %s"
            " AND (ended_at IS NULL OR ended_at > %s) ORDER BY started_at",
            (stay.location_id, stay.end or now, stay.start),
        )
        for row in await cur.fetchall():
            found[int(row[0])] = ExcursionSummary(int(row[0]), *row[1:])
    return sorted(found.values(), key=lambda e: (e.started_at, e.excursion_id))


MAX_TRACE_BUCKETS = 50_000
"""At most this many buckets in a lot's trace: hourly buckets cover more than five years."""


async def lot_exposure(
    conn: AsyncConnection[TupleRow],
    lot_id: int,
    *,
    now: datetime,
    bucket: timedelta,
    max_buckets: int = MAX_TRACE_BUCKETS,
) -> LotExposure | None:
    """The lot's whole-life exposure as of ``now`` (None when there is no such lot).

    Raises ``TraceTooLongError`` before computing anything when the trace from the first stay
    to ``now`` would need more than ``max_buckets`` buckets of ``bucket``.
    """
    info = await lot_info(conn, lot_id)
    if info is None:
        return None
    stays = [Stay(s.location_id, s.start, s.end) for s in await lot_stays(conn, lot_id)]
    if stays:
        span = now - min(s.start for s in stays)  # stays are clipped to now
        if span / bucket > max_buckets:
            raise TraceTooLongError(
                f"the trace would have {int(span / bucket)} buckets (at most {max_buckets});"
                f" use a bucket of at least {_ceil_minutes(span / max_buckets)}"
            )
    readings = await _readings(conn, stays, now)
    result = exposure(info.profile, stays, readings, budget=info.budget, now=now, bucket=bucket)
    return LotExposure(info, stays, result, await _excursions(conn, stays, now))


def _ceil_minutes(width: timedelta) -> str:
    minutes = -(-width // timedelta(minutes=1))
    return f"PT{max(minutes, 1)}M"
