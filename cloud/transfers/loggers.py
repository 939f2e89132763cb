"""A shipment's loggers and trackers in the database, and the transit's cold-chain verdict.

A logger is a sensor mounted at the shipment's transit location; its readings go into the
ordinary ``readings`` table (gateway ``shipment``, one boot id per logger and shipment, so a
re-imported file adds nothing), so a lot's exposure, MKT and budget take the transit in. The
verdict (``judge_transfer``) runs the excursion machine over the readings from dispatch to
receipt (or now); ``condemn`` quarantines what is in transit and records the excursions at the
transit location, once (idempotent per reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.coldchain.profiles import StorageProfile
from cloud.coldchain.store import PROFILE_COLUMNS, profile_from_row
from cloud.ledger.service import quarantine_at_location
from cloud.transfers import TransferRejectedError, TransferStateError
from cloud.transfers.store import Transfer, get_transfer
from cloud.transfers.transit import TransitJudgement, judge

GATEWAY = "shipment"


@dataclass(frozen=True)
class Sample:
    """One logger reading: device time, °C, and a position when the tracker gave one."""

    time: datetime
    celsius: float
    latitude: float | None = None
    longitude: float | None = None


def sensor_id(t: Transfer, logger_id: str) -> str:
    return f"{t.transit_location_id}:{logger_id}"


def _boot(sensor: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"coldtrace:shipment-logger:{sensor}")


async def attach(
    conn: AsyncConnection[TupleRow],
    t: Transfer,
    logger_id: str,
    kind: str,
    *,
    via_gateway: datetime | None = None,
) -> str:
    """Mounts the logger at the transit location (idempotent); returns its sensor id.

    ``via_gateway``: the tracker reports through a gateway (a truck's, over MQTT) under its own
    id as sensor id; it is remounted at this transit location from that time, so the gateway's
    readings are judged there by the ordinary cold-chain step (an action excursion quarantines
    what is in transit at once) and count for this shipment's lots. Only a sensor mounted
    nowhere or at a transit location (a tracker's previous trip) may be taken so: remounting a
    fixed sensor is an administrator's change (``PUT /v1/sensors/{id}``), and moving another
    site's fridge sensor into this site's transit would have its own gateway's readings of it
    refused as another site's (``TransferRejectedError``).
    """
    if via_gateway is None:
        sensor = sensor_id(t, logger_id)
        await conn.execute(
            "INSERT INTO sensors (sensor_id, location_id, description) VALUES (%s, %s, %s)"
            " ON CONFLICT (sensor_id) DO NOTHING",
            (sensor, t.transit_location_id, f"{kind} {logger_id} on {t.reference}"),
        )
    else:
        sensor = logger_id
        await _refuse_fixed_sensor(conn, sensor)
        await conn.execute(
            "INSERT INTO sensors (sensor_id, location_id, mounted_at, description)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (sensor_id) DO UPDATE"
            " SET location_id = EXCLUDED.location_id, mounted_at = EXCLUDED.mounted_at,"
            " description = EXCLUDED.description",
            (sensor, t.transit_location_id, via_gateway, f"tracker {logger_id} on {t.reference}"),
        )
    await conn.execute(
        "INSERT INTO shipment_loggers (transfer_id, logger_id, kind, sensor_id)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (transfer_id, logger_id) DO NOTHING",
        (t.transfer_id, logger_id, kind, sensor),
    )
    return sensor


async def _refuse_fixed_sensor(conn: AsyncConnection[TupleRow], sensor: str) -> None:
    cur = await conn.execute(
        "SELECT s.location_id, l.kind, l.site_id FROM sensors s"
        " LEFT JOIN locations l USING (location_id) WHERE s.sensor_id = %s",
        (sensor,),
    )
    row = await cur.fetchone()
    if row is not None and row[0] is not None and row[1] != "transit":
        raise TransferRejectedError(
            f"sensor {sensor!r} is mounted at {row[0]} (site {row[2]}): a tracker cannot be a"
            " fixed sensor; an administrator unmounts it first (PUT /v1/sensors/{id})"
        )


async def logger_transfer(
    conn: AsyncConnection[TupleRow], logger_id: str, first: datetime, last: datetime
) -> Transfer | None:
    """The shipment that carried ``logger_id`` over readings ``first``..``last``: its loggers
    list it and its ship/receive times overlap them (the latest such shipment)."""
    cur = await conn.execute(
        "SELECT t.transfer_id FROM shipment_loggers s JOIN transfers t USING (transfer_id)"
        " WHERE s.logger_id = %s AND t.shipped_at IS NOT NULL AND t.shipped_at <= %s"
        " AND (t.received_at IS NULL OR t.received_at >= %s)"
        " ORDER BY t.shipped_at DESC LIMIT 1",
        (logger_id, last, first),
    )
    row = await cur.fetchone()
    return None if row is None else await get_transfer(conn, int(row[0]))


async def store_samples(
    conn: AsyncConnection[TupleRow], sensor: str, samples: Sequence[Sample], received_at: datetime
) -> int:
    """Writes the samples as readings (and positions); returns how many were new."""
    boot = _boot(sensor)
    new = 0
    async with conn.cursor() as c:
        for s in samples:
            # seq from the device time: the same reading imported twice is the same row
            seq = int(s.time.timestamp() * 1000)
            await c.execute(
                "INSERT INTO readings (time, sensor_id, value, unit, quality, received_at,"
                " gateway_id, boot_id, seq) VALUES (%s, %s, %s, 'degC', 'good', %s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (s.time, sensor, s.celsius, received_at, GATEWAY, boot, seq),
            )
            new += c.rowcount
            if s.latitude is not None and s.longitude is not None:
                await c.execute(
                    "INSERT INTO shipment_positions (sensor_id, time, latitude, longitude)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (sensor, s.time, s.latitude, s.longitude),
                )
    return new


async def transit_profile(conn: AsyncConnection[TupleRow], t: Transfer) -> StorageProfile:
    cols = ", ".join(f"p.{c.strip()}" for c in PROFILE_COLUMNS.split(","))
    cur = await conn.execute(
        f"SELECT {cols} FROM locations l JOIN storage_profiles p USING (profile_id)"
        " WHERE l.location_id = %s",
        (t.transit_location_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise TransferStateError(f"transit location of {t.reference!r} has no storage profile")
    return profile_from_row(row)


async def judge_transfer(
    conn: AsyncConnection[TupleRow], t: Transfer, *, until: datetime
) -> TransitJudgement | None:
    """The transit's verdict from dispatch to ``until`` (None before dispatch)."""
    if t.shipped_at is None:
        return None
    end = t.received_at or until
    cur = await conn.execute(
        "SELECT r.sensor_id, r.time, r.value FROM readings r"
        " JOIN shipment_loggers s USING (sensor_id) WHERE s.transfer_id = %s"
        " AND r.time >= %s AND r.time < %s AND r.value IS NOT NULL AND r.quality <> 'bad'"
        " ORDER BY r.sensor_id, r.time",
        (t.transfer_id, t.shipped_at, end),
    )
    readings: dict[str, list[tuple[datetime, float]]] = {}
    for sensor, time, value in await cur.fetchall():
        readings.setdefault(str(sensor), []).append((time, float(value)))
    cur = await conn.execute(
        "SELECT sensor_id FROM shipment_loggers WHERE transfer_id = %s", (t.transfer_id,)
    )
    for (sensor,) in await cur.fetchall():
        readings.setdefault(str(sensor), [])
    profile = await transit_profile(conn, t)
    return judge(profile, readings, start=t.shipped_at, end=end)


async def condemn(
    conn: AsyncConnection[TupleRow], t: Transfer, verdict: TransitJudgement, at: datetime
) -> list[int]:
    """Records the transit's action excursions and quarantines what is in transit; the lots."""
    profile_id = (await transit_profile(conn, t)).profile_id
    for e in verdict.action:
        await conn.execute(
            "INSERT INTO excursions (location_id, sensor_id, kind, level, started_at, ended_at,"
            " peak_value, profile_id, frozen, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, jsonb_build_object('transfer', %s::text)) ON CONFLICT DO NOTHING",
            (
                t.transit_location_id, e.sensor_id, e.kind, e.level, e.started_at, e.ended_at,
                e.peak_value, profile_id, e.freeze, t.reference,
            ),
        )  # fmt: skip
    first = verdict.action[0]
    return await quarantine_at_location(
        conn,
        location_id=t.transit_location_id,
        effective_at=at,
        actor="transit",
        reason=(
            f"action-level {first.kind} excursion in transit on logger {first.sensor_id}"
            f" from {first.started_at.isoformat()}"
        ),
        reference=f"transit:{t.reference}",
    )
