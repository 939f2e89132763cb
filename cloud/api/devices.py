"""Devices (sensors, readers, servers, gateways) and their last-seen state."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel

from cloud.api.deps import IdPath, IdQuery, Pool
from cloud.auth.deps import require_role
from cloud.auth.model import Role

router = APIRouter(
    tags=["devices"], dependencies=[require_role(Role.VIEWER, Role.OPERATOR, Role.QA)]
)


DeviceType = Literal["sensor", "llrp_reader", "antenna", "opcua_server", "mqtt_broker", "gateway"]


class DeviceOut(BaseModel):
    device_id: str
    device_type: str
    gateway_id: str | None
    location_id: str | None
    last_seen_at: datetime | None
    """Device time of the newest reading, tag read or non-offline status handled."""
    last_state: str | None
    last_detail: str | None
    state_at: datetime | None
    silent_since: datetime | None
    """Set while the device is silent: its last_seen_at when the silence was detected."""
    processing_stalled_since: datetime | None
    """Set while a processing stream of the device's gateway is stalled: what the device sent
    since may be stored but is not processed, so ``last_seen_at`` is not news."""
    processing_error: str | None
    """The error the stalled stream keeps failing with."""
    silence: Literal["no_data", "processing_stalled"] | None
    """Why nothing new is known: the device is silent (``no_data``), or its gateway's data is
    not being processed (``processing_stalled``, which takes precedence); None when current."""
    clock_skew: timedelta | None = None
    """For a gateway: the ``sent_at`` of its last batch or heartbeat minus the cloud's receipt
    (positive: its clock runs ahead). Site, refusals and more in ``GET /v1/gateways``."""


_SELECT = """
SELECT d.device_id, d.device_type, d.gateway_id, coalesce(s.location_id, d.location_id),
       d.last_seen_at, d.last_state, d.last_detail, d.state_at, x.last_seen_at,
       p.stalled_since, p.last_error, k.clock_sent_at - k.clock_received_at
FROM devices d
LEFT JOIN sensors s ON s.sensor_id = d.device_id
LEFT JOIN device_silences x ON x.device_id = d.device_id AND x.ended_at IS NULL
LEFT JOIN LATERAL (
    SELECT ps.stalled_since, ps.last_error FROM processor_streams ps
    WHERE ps.gateway_id = CASE WHEN d.device_type = 'gateway' THEN d.device_id ELSE d.gateway_id END
      AND ps.stalled_since IS NOT NULL
    ORDER BY ps.stalled_since LIMIT 1
) p ON true
LEFT JOIN gateways k ON d.device_type = 'gateway' AND k.gateway_id = d.device_id
"""


MAX_DEVICES = 10_000
"""Devices in one answer. Gateways create device rows by naming new ids (up to 10,000 a
batch), so the list is bounded by the request, not by what admins registered."""


@router.get("/v1/devices", response_model=list[DeviceOut])
async def list_devices(
    pool: Pool,
    device_type: Annotated[DeviceType | None, Query()] = None,
    gateway_id: IdQuery = None,
    after: IdQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_DEVICES)] = MAX_DEVICES,
) -> list[DeviceOut]:
    """Devices by id, optionally of one type or behind one gateway; at most ``limit`` (a full
    page: ask again with ``after`` = its last ``device_id``)."""
    async with pool.connection() as conn:
        return await _fetch(
            conn,
            "WHERE (%(t)s::text IS NULL OR d.device_type = %(t)s)"
            " AND (%(g)s::text IS NULL OR d.gateway_id = %(g)s)"
            " AND (%(a)s::text IS NULL OR d.device_id > %(a)s) ORDER BY d.device_id LIMIT %(n)s",
            {"t": device_type, "g": gateway_id, "a": after, "n": limit},
        )


@router.get("/v1/devices/{device_id:path}", response_model=DeviceOut)
async def get_device(device_id: IdPath, pool: Pool) -> DeviceOut:
    async with pool.connection() as conn:
        found = await _fetch(conn, "WHERE d.device_id = %(d)s", {"d": device_id})
    if not found:
        raise HTTPException(404, f"no device {device_id!r}")
    return found[0]


async def _fetch(
    conn: AsyncConnection[TupleRow], where: str, params: dict[str, object]
) -> list[DeviceOut]:
    cur = await conn.execute((_SELECT + where).encode(), params)
    return [
        DeviceOut(
            device_id=r[0], device_type=r[1], gateway_id=r[2], location_id=r[3],
            last_seen_at=r[4], last_state=r[5], last_detail=r[6], state_at=r[7],
            silent_since=r[8], processing_stalled_since=r[9], processing_error=r[10],
            silence="processing_stalled" if r[9] is not None else
                    "no_data" if r[8] is not None else None,
            clock_skew=r[11],
        )
        for r in await cur.fetchall()
    ]  # fmt: skip
