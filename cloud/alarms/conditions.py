"""The condition job: alarms no reading raises by itself, checked against the clock.

- ``gateway_offline``: no contact from a gateway (its creation, last stored batch, or last
  request with its token, heartbeats included: ``gateways.last_contact_at``) within
  ``gateway_offline_after``, or within three of its heartbeat intervals when that is longer;
- ``sensor_never_reported``: a sensor mounted longer than ``never_reported_after`` ago that has
  sent nothing since its mounting (a mount without a time counts from when the job first saw
  it unseen, ``alarm_unseen_sensors``);
- ``outbox_filling``: a gateway reporting its outbox above high water (the edge's local alarm
  ``outbox/high_water`` travels as a gateway status);
- ``battery_low`` / ``signal_low``: devices whose attributes report ``battery_percent`` or
  ``rssi_dbm`` beyond the limits (only devices that report them);
- ``clock_skew``: readings stamped by a device ahead of the gateway's receipt, or received by a
  gateway ahead of the cloud's clock, or a gateway whose last batch or heartbeat was sent ahead
  of the cloud's clock (``gateways.clock_sent_at``, within ``clock_skew_window``), by more than
  ``clock_skew_limit``;
- ``record_refused``: records of another site refused at ingest (``gateway_refusals``, reasons
  ``foreign_site``, ``foreign_device``, ``no_site``) within the last hour; one alarm per gateway,
  reason and hour while they go on.

Each alert has a ``dedup_key`` naming the occurrence (a gateway's last contact, a sensor's mount,
an hour of skew), so a job run twice, or by two processes, raises it once. The alerts go through
``raise_alert`` like the cold-chain ones, and the alarm trigger routes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.alarms.settings import AlarmSettings
from cloud.coldchain.alerts import AlertKind, NewAlert, Severity, raise_alert

# greatest() skips NULLs: a gateway never in contact counts from its creation. A gateway whose
# heartbeat interval is long (reported by its agent) is given three of them before it counts.
_GATEWAYS_SQL = """
SELECT g.gateway_id, g.site_id, c.last_contact, c.last_batch
FROM gateways g
CROSS JOIN LATERAL (
    SELECT greatest(g.created_at, g.last_contact_at, b.last_batch) AS last_contact, b.last_batch
    FROM (SELECT max(s.updated_at) AS last_batch FROM gateway_streams s
          WHERE s.gateway_id = g.gateway_id) b
) c
WHERE g.disabled_at IS NULL AND g.site_id IS NOT NULL
  AND c.last_contact < %(now)s - greatest(%(after)s, 3 * g.heartbeat_interval)
"""

# A mount without a time ('-infinity') counts from when this job first noticed it unseen.
_UNSEEN_SQL = """
WITH unseen AS (
    SELECT s.sensor_id, s.location_id
    FROM sensors s LEFT JOIN devices d ON d.device_id = s.sensor_id
    WHERE s.location_id IS NOT NULL AND NOT isfinite(s.mounted_at) AND d.last_seen_at IS NULL
), gone AS (
    DELETE FROM alarm_unseen_sensors w
    WHERE NOT EXISTS (SELECT 1 FROM unseen u WHERE u.sensor_id = w.sensor_id)
)
INSERT INTO alarm_unseen_sensors (sensor_id, location_id, noticed_at)
SELECT sensor_id, location_id, %(now)s FROM unseen
ON CONFLICT (sensor_id) DO UPDATE SET location_id = EXCLUDED.location_id,
    noticed_at = CASE WHEN alarm_unseen_sensors.location_id = EXCLUDED.location_id
                      THEN alarm_unseen_sensors.noticed_at ELSE EXCLUDED.noticed_at END
"""

_NEVER_SQL = """
SELECT s.sensor_id, s.location_id, s.mounted_at
FROM sensors s
LEFT JOIN devices d ON d.device_id = s.sensor_id
WHERE s.location_id IS NOT NULL AND isfinite(s.mounted_at) AND s.mounted_at < %(cutoff)s
  AND (d.last_seen_at IS NULL OR d.last_seen_at < s.mounted_at)
UNION ALL
SELECT w.sensor_id, w.location_id, w.noticed_at
FROM alarm_unseen_sensors w
WHERE w.noticed_at < %(cutoff)s
"""

_OUTBOX_SQL = """
SELECT d.device_id, g.site_id, d.state_at, d.last_detail
FROM devices d JOIN gateways g ON g.gateway_id = d.device_id
WHERE d.device_type = 'gateway' AND d.last_state = 'degraded' AND g.site_id IS NOT NULL
  AND d.last_detail LIKE 'local alarm outbox/high_water:%%'
"""

_DEVICE_SQL = """
SELECT d.device_id, coalesce(s.location_id, d.location_id), g.site_id,
       CASE WHEN jsonb_typeof(d.attributes->'battery_percent') = 'number'
            THEN (d.attributes->>'battery_percent')::float8 END,
       CASE WHEN jsonb_typeof(d.attributes->'rssi_dbm') = 'number'
            THEN (d.attributes->>'rssi_dbm')::float8 END
FROM devices d
LEFT JOIN sensors s ON s.sensor_id = d.device_id
LEFT JOIN gateways g ON g.gateway_id = d.gateway_id
WHERE d.attributes ?| array['battery_percent', 'rssi_dbm']
"""

_SKEW_SQL = """
SELECT r.sensor_id, r.gateway_id, max(r.time - r.received_at), max(r.received_at - r.stored_at)
FROM readings r
WHERE r.time > %(since)s AND r.stored_at > %(since)s
  AND (r.time > r.received_at + %(limit)s OR r.received_at > r.stored_at + %(limit)s)
GROUP BY r.sensor_id, r.gateway_id
"""


# The gateway's clock as its last batch or heartbeat measured it: an idle gateway has no readings.
_GATEWAY_CLOCK_SQL = """
SELECT g.gateway_id, g.site_id, g.clock_sent_at - g.clock_received_at
FROM gateways g
WHERE g.disabled_at IS NULL AND g.clock_received_at > %(since)s
  AND g.clock_sent_at > g.clock_received_at + %(limit)s
"""


class Raise(Protocol):
    async def __call__(
        self, kind: AlertKind, severity: Severity, message: str, key: str, **fields: Any
    ) -> None: ...


_REFUSED_SQL = """
SELECT r.gateway_id, g.site_id, r.reason, r.refused, r.last_at, r.last_detail
FROM gateway_refusals r JOIN gateways g USING (gateway_id)
WHERE r.reason IN ('foreign_site', 'foreign_device', 'no_site') AND r.last_at > %(since)s
  AND g.site_id IS NOT NULL
"""


@dataclass(frozen=True)
class ConditionResult:
    raised: dict[str, int]


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


async def detect_conditions(
    conn: AsyncConnection[TupleRow], now: datetime, settings: AlarmSettings
) -> ConditionResult:
    """Raises the alerts of every condition found as of ``now``, in one transaction."""
    raised: dict[str, int] = {}

    async def alert(kind: AlertKind, severity: Severity, message: str, key: str,
                    **fields: Any) -> None:  # fmt: skip
        new = NewAlert(kind=kind, severity=severity, at=now, message=message, dedup_key=key,
                       **fields)  # fmt: skip
        if await raise_alert(conn, new) is not None:
            raised[kind] = raised.get(kind, 0) + 1

    async with conn.transaction():
        cur = await conn.execute(
            _GATEWAYS_SQL, {"now": now, "after": settings.gateway_offline_after}
        )
        for gateway_id, site_id, last, last_batch in await cur.fetchall():
            await alert(
                "gateway_offline", "critical",
                f"gateway {gateway_id} has not been in contact since {last:%Y-%m-%d %H:%M} UTC"
                f" ({_minutes((now - last).total_seconds())})",
                f"gateway_offline:{gateway_id}:{last.isoformat()}",
                detail={"site_id": site_id, "gateway_id": gateway_id,
                        "last_contact_at": last.isoformat(),
                        "last_batch_at": None if last_batch is None else last_batch.isoformat()},
            )  # fmt: skip
        await conn.execute(_UNSEEN_SQL, {"now": now})
        cur = await conn.execute(_NEVER_SQL, {"cutoff": now - settings.never_reported_after})
        for sensor_id, location_id, mounted_at in await cur.fetchall():
            await alert(
                "sensor_never_reported", "warning",
                f"sensor {sensor_id} mounted at {location_id} has not reported since"
                f" {mounted_at:%Y-%m-%d %H:%M} UTC",
                f"never_reported:{sensor_id}:{mounted_at.isoformat()}",
                location_id=location_id, sensor_id=sensor_id,
            )  # fmt: skip
        cur = await conn.execute(_OUTBOX_SQL)
        for gateway_id, site_id, state_at, detail in await cur.fetchall():
            await alert(
                "outbox_filling", "warning",
                f"gateway {gateway_id}: {detail.removeprefix('local alarm ')}",
                f"outbox_filling:{gateway_id}:{state_at.isoformat()}",
                detail={"site_id": site_id, "gateway_id": gateway_id},
            )  # fmt: skip
        await _devices(conn, now, settings, alert)
        await _skew(conn, now, settings, alert)
        cur = await conn.execute(_REFUSED_SQL, {"since": now - timedelta(hours=1)})
        for gateway_id, site_id, reason, count, last_at, last_detail in await cur.fetchall():
            await alert(
                "record_refused", "warning",
                f"gateway {gateway_id}: records refused ({reason.replace('_', ' ')}),"
                f" {count} so far; last: {last_detail or '-'}",
                f"record_refused:{gateway_id}:{reason}:{last_at:%Y-%m-%dT%H}",
                detail={"site_id": site_id, "gateway_id": gateway_id, "reason": reason},
            )  # fmt: skip
    return ConditionResult(raised)


async def _devices(
    conn: AsyncConnection[TupleRow], now: datetime, settings: AlarmSettings, raise_: Raise
) -> None:
    day = now.strftime("%Y-%m-%d")
    cur = await conn.execute(_DEVICE_SQL)
    for device_id, location_id, site_id, battery, rssi in await cur.fetchall():
        where = {"location_id": location_id, "sensor_id": device_id,
                 "detail": {"site_id": site_id, "device_id": device_id}}  # fmt: skip
        if battery is not None and battery < settings.battery_low_percent:
            await raise_(
                "battery_low", "warning", f"{device_id}: battery at {battery:.0f} %",
                f"battery_low:{device_id}:{day}", **where,
            )  # fmt: skip
        if rssi is not None and rssi < settings.signal_low_dbm:
            await raise_(
                "signal_low", "warning", f"{device_id}: signal at {rssi:.0f} dBm",
                f"signal_low:{device_id}:{day}", **where,
            )  # fmt: skip


async def _skew(
    conn: AsyncConnection[TupleRow], now: datetime, settings: AlarmSettings, raise_: Raise
) -> None:
    hour = now.strftime("%Y-%m-%dT%H")
    cur = await conn.execute(
        _SKEW_SQL, {"since": now - settings.clock_skew_window, "limit": settings.clock_skew_limit}
    )
    limit = settings.clock_skew_limit
    for sensor_id, gateway_id, device_ahead, gateway_ahead in await cur.fetchall():
        ctx = await conn.execute(
            "SELECT s.location_id, l.site_id FROM sensors s JOIN locations l USING (location_id)"
            " WHERE s.sensor_id = %s",
            (sensor_id,),
        )
        row = await ctx.fetchone()
        location_id = row[0] if row else None
        if device_ahead is not None and device_ahead > limit:
            await raise_(
                "clock_skew", "warning",
                f"sensor {sensor_id} stamps readings {_minutes(device_ahead.total_seconds())}"
                " ahead of its gateway's clock",
                f"clock_skew:{sensor_id}:{hour}", location_id=location_id, sensor_id=sensor_id,
            )  # fmt: skip
        if gateway_ahead is not None and gateway_ahead > limit:
            cur_gw = await conn.execute(
                "SELECT site_id FROM gateways WHERE gateway_id = %s", (gateway_id,)
            )
            gw = await cur_gw.fetchone()
            await _gateway_ahead(raise_, hour, gateway_id, gw[0] if gw else None, gateway_ahead)
    cur = await conn.execute(
        _GATEWAY_CLOCK_SQL, {"since": now - settings.clock_skew_window, "limit": limit}
    )
    for gateway_id, site_id, ahead in await cur.fetchall():
        # the same alarm and key as from its readings: one per gateway and hour
        await _gateway_ahead(raise_, hour, gateway_id, site_id, ahead)


async def _gateway_ahead(
    raise_: Raise, hour: str, gateway_id: str, site_id: str | None, ahead: timedelta
) -> None:
    await raise_(
        "clock_skew", "warning",
        f"gateway {gateway_id}'s clock runs {_minutes(ahead.total_seconds())}"
        " ahead of the cloud's",
        f"clock_skew:gateway:{gateway_id}:{hour}",
        detail={"site_id": site_id, "gateway_id": gateway_id},
    )  # fmt: skip
