"""``POST /v1/gateway/heartbeat``: a gateway with nothing else to send says it is alive.

Its token is checked first (``gateway_identity``, which also stamps ``gateways.last_contact_at``
as every gateway route does), then the small body is read (``protocols.heartbeat.Heartbeat``,
bounded by the request-limit middleware's ordinary body limit). The interval the agent keeps is
stored when it changes, so the alarm ``gateway_offline`` waits at least three of them. Its
``sent_at`` measures the gateway's clock exactly as a batch's does (``record_clock``): an idle
gateway that only beats keeps its clock skew, and the alarm ``clock_skew``, current.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, status

from cloud.api.deps import Pool
from cloud.api.documents import body_schema
from cloud.api.gateway_config import gateway_body, gateway_identity, transaction
from cloud.ingest.writer import record_clock
from protocols.heartbeat import HEARTBEAT_PATH, Heartbeat

router = APIRouter(tags=["gateway configuration"])


@router.post(
    HEARTBEAT_PATH,
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra=body_schema(Heartbeat),
    responses={401: {"description": "missing or unknown gateway token"}},
)
async def post_heartbeat(request: Request, pool: Pool) -> None:
    """The calling gateway is alive and sends a heartbeat every ``interval_seconds`` when idle."""
    identity = await gateway_identity(request, pool)
    body = await gateway_body(request, Heartbeat)
    interval = timedelta(seconds=body.interval_seconds)
    async with transaction(pool) as conn:
        await conn.execute(
            "UPDATE gateways SET heartbeat_interval = %s"
            " WHERE gateway_id = %s AND heartbeat_interval IS DISTINCT FROM %s",
            (interval, identity.gateway_id, interval),
        )
        await record_clock(conn, identity.gateway_id, body.sent_at)
