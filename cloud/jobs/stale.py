"""Stale-sensor detection: a sensor not seen for its silence interval gets an open silence row.

The silence interval is the storage profile's ``silence_after`` of the location the sensor is
mounted at, or the configured default. "Seen" is ``devices.last_seen_at``, the device time of the
newest reading the processor has handled. A silence is closed when the sensor is seen again.
No silence is opened for a sensor whose gateway has a stalled processing stream: its readings
may be stored and waiting, which the devices API reports as "processing stalled".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

_OPEN_SQL = """
INSERT INTO device_silences (device_id, last_seen_at, silence_after, detected_at)
SELECT d.device_id, d.last_seen_at, coalesce(p.silence_after, %(default)s), %(now)s
FROM devices d
LEFT JOIN sensors s ON s.sensor_id = d.device_id
LEFT JOIN locations l ON l.location_id = coalesce(s.location_id, d.location_id)
LEFT JOIN storage_profiles p ON p.profile_id = l.profile_id
WHERE d.device_type = 'sensor' AND d.last_seen_at IS NOT NULL
  AND d.last_seen_at < %(now)s - coalesce(p.silence_after, %(default)s)
  AND NOT EXISTS (
      SELECT 1 FROM device_silences x WHERE x.device_id = d.device_id AND x.ended_at IS NULL)
  AND NOT EXISTS (  -- a stalled gateway's sensors are "processing stalled", not silent
      SELECT 1 FROM processor_streams ps
      WHERE ps.gateway_id = d.gateway_id AND ps.stalled_since IS NOT NULL)
"""

_CLOSE_SQL = """
UPDATE device_silences x SET ended_at = greatest(%(now)s, x.detected_at),
                             resumed_at = d.last_seen_at
FROM devices d
WHERE x.device_id = d.device_id AND x.ended_at IS NULL AND d.last_seen_at > x.last_seen_at
"""


@dataclass(frozen=True)
class StaleResult:
    opened: int
    closed: int


async def detect_stale(
    conn: AsyncConnection[TupleRow], now: datetime, default_silence: timedelta
) -> StaleResult:
    """Opens and closes silences as of ``now``, in one transaction."""
    params = {"now": now, "default": default_silence}
    async with conn.transaction():
        closed = await conn.execute(_CLOSE_SQL, params)
        opened = await conn.execute(_OPEN_SQL, params)
    return StaleResult(opened=opened.rowcount, closed=closed.rowcount)
