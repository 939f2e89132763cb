"""OPC-UA browse requests: asked by an administrator, taken and answered by the gateway.

The agent polls ``GET /v1/gateway/browse-requests``; a request handed out is marked taken and
handed out again only if no answer came within ``RETAKE_AFTER`` (an agent restarted while
browsing). An answer is kept once: a second one for the same request is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from cloud.gateway_config import InvalidGatewayConfigError, UnknownGatewayError
from protocols.gateway_config import BrowseAnswer, BrowseRequest

RETAKE_AFTER = timedelta(minutes=2)
OBJECTS_FOLDER = "i=85"

Conn = AsyncConnection[TupleRow]


@dataclass(frozen=True)
class BrowseStatus:
    request_id: int
    gateway_id: str
    source_name: str
    start_node: str
    depth: int
    requested_by: str
    requested_at: datetime
    taken_at: datetime | None
    answered_at: datetime | None
    nodes: list[dict[str, Any]] | None
    truncated: bool
    error: str | None


async def ask(
    conn: Conn, gateway_id: str, source_name: str, *, start_node: str, depth: int, actor: str
) -> int:
    cur = await conn.execute(
        "SELECT kind FROM gateway_sources WHERE gateway_id = %s AND name = %s",
        (gateway_id, source_name),
    )
    row = await cur.fetchone()
    if row is None:
        raise UnknownGatewayError(f"gateway {gateway_id!r} has no source {source_name!r}")
    if row[0] != "opcua":
        raise InvalidGatewayConfigError(f"source {source_name!r} is {row[0]}, not OPC-UA")
    cur = await conn.execute(
        "INSERT INTO opcua_browse_requests (gateway_id, source_name, start_node, depth,"
        " requested_by) VALUES (%s, %s, %s, %s, %s) RETURNING request_id",
        (gateway_id, source_name, start_node, depth, actor),
    )
    made = await cur.fetchone()
    assert made is not None  # INSERT ... RETURNING gives its row
    return int(made[0])


async def take(conn: Conn, gateway_id: str, limit: int = 5) -> list[BrowseRequest]:
    """The gateway's open requests (new, or taken long ago without an answer), marked taken."""
    cur = await conn.execute(
        "UPDATE opcua_browse_requests r SET taken_at = now() FROM gateway_sources s"
        " WHERE r.request_id IN (SELECT request_id FROM opcua_browse_requests"
        "   WHERE gateway_id = %(gw)s AND answered_at IS NULL"
        "     AND (taken_at IS NULL OR taken_at < now() - %(retake)s)"
        "   ORDER BY request_id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
        " AND s.gateway_id = r.gateway_id AND s.name = r.source_name"
        " RETURNING r.request_id, r.source_name, r.start_node, r.depth, s.settings, s.credentials",
        {"gw": gateway_id, "retake": RETAKE_AFTER, "limit": limit},
    )
    rows = sorted(await cur.fetchall())
    return [
        BrowseRequest(
            request_id=r[0], source_name=r[1], start_node=r[2], depth=r[3], source={**r[4], **r[5]}
        )
        for r in rows
    ]


async def answer(conn: Conn, gateway_id: str, request_id: int, body: BrowseAnswer) -> None:
    nodes = [n.model_dump(mode="json") for n in body.nodes]
    cur = await conn.execute(
        "UPDATE opcua_browse_requests SET answered_at = now(), nodes = %s, truncated = %s,"
        " error = %s WHERE request_id = %s AND gateway_id = %s AND answered_at IS NULL"
        " RETURNING request_id",
        (Jsonb(nodes), body.truncated, body.error, request_id, gateway_id),
    )
    if await cur.fetchone() is None:
        raise UnknownGatewayError(f"no open browse request {request_id} for {gateway_id!r}")


async def status(conn: Conn, gateway_id: str, request_id: int) -> BrowseStatus:
    cur = await conn.execute(
        "SELECT request_id, gateway_id, source_name, start_node, depth, requested_by,"
        " requested_at, taken_at, answered_at, nodes, truncated, error"
        " FROM opcua_browse_requests WHERE request_id = %s AND gateway_id = %s",
        (request_id, gateway_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise UnknownGatewayError(f"no browse request {request_id} for {gateway_id!r}")
    return BrowseStatus(*row)
