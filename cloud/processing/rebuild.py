"""Rebuilds a committed ingest batch's records, in sequence order, from the tables ingest wrote.

The processor reads back what was stored rather than keeping the request in memory, so a batch
stored by any ingest worker can be processed by any processor, and a replay after a crash sees
exactly the same records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.rows import TupleRow

from protocols.batch import Sequenced
from protocols.records import (
    DeadLetter,
    DeviceStatus,
    PortalPassage,
    Reading,
    Record,
    TagRead,
)


class BatchIncompleteError(RuntimeError):
    """A batch's rows are not all there (pruned by retention, or the database was altered)."""


@dataclass(frozen=True)
class BatchRow:
    batch_id: int
    gateway_id: str
    boot_id: UUID
    first_seq: int
    last_seq: int
    record_count: int
    received_at: datetime
    time_min: datetime | None
    time_max: datetime | None


@dataclass(frozen=True)
class _Source:
    table: str
    columns: str
    timed: bool
    build: Callable[[TupleRow], Record]


_SOURCES = (
    _Source(
        "readings",
        "seq, sensor_id, time, value, unit, quality, received_at",
        True,
        lambda r: Reading(
            sensor_id=r[1], time=r[2], value=r[3], unit=r[4], quality=r[5], received_at=r[6]
        ),
    ),
    _Source(
        "tag_reads",
        "seq, reader_id, antenna, epc, rssi, time, last_seen, read_count, received_at, quality",
        True,
        lambda r: TagRead(
            reader_id=r[1],
            antenna=r[2],
            epc=r[3],
            rssi=r[4],
            first_seen=r[5],
            last_seen=r[6],
            count=r[7],
            received_at=r[8],
            quality=r[9],
        ),
    ),
    _Source(
        "portal_passages",
        "seq, passage_id, door_id, reader_id, direction, started_at, ended_at, epcs",
        False,
        lambda r: PortalPassage(
            passage_id=r[1],
            door_id=r[2],
            reader_id=r[3],
            direction=r[4],
            started_at=r[5],
            ended_at=r[6],
            epcs=tuple(r[7]),
        ),
    ),
    _Source(
        "device_status",
        "seq, device_id, device_type, state, detail, time",
        False,
        lambda r: DeviceStatus(
            device_id=r[1], device_type=r[2], state=r[3], detail=r[4], time=r[5]
        ),
    ),
    _Source(
        "dead_letters",
        "seq, source, reason, raw, received_at",
        False,
        lambda r: DeadLetter(source=r[1], reason=r[2], raw=bytes(r[3]), received_at=r[4]),
    ),
)


async def rebuild(conn: AsyncConnection[TupleRow], batch: BatchRow) -> list[Sequenced]:
    """The batch's records ordered by seq; ``BatchIncompleteError`` if any seq is missing."""
    items: list[Sequenced] = []
    for source in _SOURCES:
        if source.timed and batch.time_min is None:
            continue  # the batch holds no record of this time-partitioned kind
        query = sql.SQL(
            "SELECT {} FROM {} WHERE gateway_id = %s AND boot_id = %s AND seq BETWEEN %s AND %s"
        ).format(sql.SQL(source.columns), sql.Identifier(source.table))
        params: list[object] = [batch.gateway_id, batch.boot_id, batch.first_seq, batch.last_seq]
        if source.timed:
            # Lets TimescaleDB exclude chunks outside the batch's device-time span.
            query += sql.SQL(" AND time BETWEEN %s AND %s")
            params += [batch.time_min, batch.time_max]
        cur = await conn.execute(query, params)
        rows = await cur.fetchall()
        items.extend(Sequenced(seq=row[0], record=source.build(row)) for row in rows)
    items.sort(key=lambda item: item.seq)
    expected = batch.last_seq - batch.first_seq + 1
    if len(items) != expected or any(
        item.seq != batch.first_seq + i for i, item in enumerate(items)
    ):
        raise BatchIncompleteError(
            f"batch {batch.batch_id} of {batch.gateway_id}/{batch.boot_id} should hold seq"
            f" {batch.first_seq}..{batch.last_seq} ({expected} records) but {len(items)} were found"
        )
    return items
