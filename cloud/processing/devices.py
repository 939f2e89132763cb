"""Keeps ``devices.last_seen_at`` / ``last_state`` in step with what a batch says.

Runs inside the processor's transaction, like a step. Times are device times: a backlog that
arrives late never moves ``last_seen_at`` backwards, and a status older than the one on record
does not overwrite it. A device reported ``offline`` was not seen, so that report changes its
state but not ``last_seen_at``.

Times are bounded by the cloud's receipt of the batch (``protocols.records.clock_ahead``): a
reading or tag read stamped ahead counts as seen at its receipt, and a status stamped ahead is
stored but not applied, whatever receipt time the gateway claims. A device belongs to the gateway
that reported it first (``gateway_id``): only that gateway's statuses change its state (ingest
refuses the others; this guards two first reports racing in one batch window). Once a device is
mounted, the mount decides: a gateway of the mount's site takes over a device first reported by a
gateway of another site (reported before it was mounted, or by a squatter).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from protocols.batch import Sequenced
from protocols.records import DeviceState, DeviceStatus, Reading, TagRead, clock_ahead

_SEEN_SQL = """
INSERT INTO devices (device_id, device_type, gateway_id, last_seen_at)
SELECT d, t, %(gateway)s, s FROM unnest(%(ids)s::text[], %(types)s::text[], %(seen)s::timestamptz[])
    AS u(d, t, s)
ON CONFLICT (device_id) DO UPDATE
SET last_seen_at = GREATEST(devices.last_seen_at, EXCLUDED.last_seen_at),
    gateway_id = COALESCE(devices.gateway_id, EXCLUDED.gateway_id)
"""

_STATE_SQL = """
INSERT INTO devices (device_id, device_type, gateway_id, last_state, last_detail, state_at,
                     last_seen_at)
SELECT d, t, %(gateway)s, st, dt, at, seen
FROM unnest(%(ids)s::text[], %(types)s::text[], %(states)s::text[], %(details)s::text[],
            %(ats)s::timestamptz[], %(seen)s::timestamptz[]) AS u(d, t, st, dt, at, seen)
ON CONFLICT (device_id) DO UPDATE
SET last_state = CASE WHEN devices.state_at IS NULL OR EXCLUDED.state_at >= devices.state_at
                      THEN EXCLUDED.last_state ELSE devices.last_state END,
    last_detail = CASE WHEN devices.state_at IS NULL OR EXCLUDED.state_at >= devices.state_at
                       THEN EXCLUDED.last_detail ELSE devices.last_detail END,
    state_at = GREATEST(devices.state_at, EXCLUDED.state_at),
    last_seen_at = GREATEST(devices.last_seen_at, EXCLUDED.last_seen_at),
    gateway_id = COALESCE(devices.gateway_id, EXCLUDED.gateway_id)
WHERE devices.gateway_id IS NULL OR devices.gateway_id = EXCLUDED.gateway_id
"""


# Ingest admitted this batch's records for the gateway's site, so a device of the batch mounted
# at that site but owned by a gateway of another site changes hands.
_HANDOVER_SQL = """
UPDATE devices d SET gateway_id = mine.gateway_id
FROM gateways mine, gateways theirs, locations l
WHERE mine.gateway_id = %(gateway)s AND d.device_id = ANY(%(ids)s)
  AND theirs.gateway_id = d.gateway_id AND theirs.site_id IS DISTINCT FROM mine.site_id
  AND l.location_id = coalesce(
      (SELECT s.location_id FROM sensors s WHERE s.sensor_id = d.device_id), d.location_id)
  AND l.site_id = mine.site_id
"""


async def update_devices(
    conn: AsyncConnection[TupleRow],
    gateway_id: str,
    records: Sequence[Sequenced],
    received_at: datetime | None = None,
) -> None:
    """Upserts the devices this batch mentions (sensors, readers, status reports).

    ``received_at`` is the cloud's receipt of the batch (``ingest_batches.received_at``).
    """
    seen: dict[str, tuple[str, datetime]] = {}
    latest: dict[str, DeviceStatus] = {}
    for item in records:
        record = item.record
        # A device clock in the future must not push last_seen ahead, or silence goes unseen.
        if isinstance(record, Reading):
            at = _trusted(record.time, record.received_at, received_at)
            _note(seen, record.sensor_id, "sensor", at)
        elif isinstance(record, TagRead):
            at = _trusted(record.last_seen, record.received_at, received_at)
            _note(seen, record.reader_id, "llrp_reader", at)
        elif isinstance(record, DeviceStatus):
            if received_at is not None and clock_ahead(record.time, received_at):
                continue  # stored as sent, never applied: a 9999 status must not stick

            known = latest.get(record.device_id)
            if known is None or record.time >= known.time:
                latest[record.device_id] = record
            if record.state is not DeviceState.OFFLINE:
                _note(seen, record.device_id, record.device_type, record.time)
    if seen or latest:
        ids = sorted(set(seen) | set(latest))
        await conn.execute(_HANDOVER_SQL, {"gateway": gateway_id, "ids": ids})
    if seen:
        await conn.execute(
            _SEEN_SQL,
            {
                "gateway": gateway_id,
                "ids": list(seen),
                "types": [t for t, _ in seen.values()],
                "seen": [s for _, s in seen.values()],
            },
        )
    if latest:
        statuses = list(latest.values())
        await conn.execute(
            _STATE_SQL,
            {
                "gateway": gateway_id,
                "ids": [s.device_id for s in statuses],
                "types": [s.device_type for s in statuses],
                "states": [s.state.value for s in statuses],
                "details": [s.detail for s in statuses],
                "ats": [s.time for s in statuses],
                "seen": [seen[s.device_id][1] if s.device_id in seen else None for s in statuses],
            },
        )


def _trusted(time: datetime, received_at: datetime, cloud_received: datetime | None) -> datetime:
    if not clock_ahead(time, received_at, cloud_received):
        return time
    return received_at if cloud_received is None else min(received_at, cloud_received)


def _note(seen: dict[str, tuple[str, datetime]], device_id: str, kind: str, at: datetime) -> None:
    known = seen.get(device_id)
    if known is None or at > known[1]:
        seen[device_id] = (kind, at)
