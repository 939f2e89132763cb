"""Stores one batch in ONE transaction, guarded by the stream's high-water mark.

The (gateway, boot) row of ``gateway_streams`` is locked first, so two workers writing the same
stream are serialised and a resend sees what the first attempt committed. Records at or below
``stored_through`` are skipped: that, not a unique key, is the idempotency guard (a resent record
whose device time changed would slip past a ``(…, seq, time)`` key on a hypertable). The rest must
continue the stream without a gap. New records go through binary COPY into session-local staging
tables and from there into the real tables with ``ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.rows import TupleRow

from cloud.ingest import SequenceGapError
from protocols.batch import Batch, Sequenced
from protocols.records import DeadLetter, DeviceStatus, PortalPassage, Reading, TagRead

NOTIFY_CHANNEL = "coldtrace_ingest"
"""The processor LISTENs here; the payload is the gateway id."""

Row = tuple[object, ...]
Key = tuple[str, UUID, int]


@dataclass(frozen=True)
class Target:
    """How one record type lands in its table."""

    table: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    row: Callable[[Key, object], Row]


def _reading(key: Key, r: object) -> Row:
    assert isinstance(r, Reading)
    return (r.time, r.sensor_id, r.value, r.unit, r.quality.value, r.received_at, *key)


def _tag_read(key: Key, r: object) -> Row:
    assert isinstance(r, TagRead)
    return (
        r.first_seen,
        r.last_seen,
        r.reader_id,
        r.antenna,
        r.epc,
        r.rssi,
        r.count,
        r.received_at,
        *key,
    )


def _passage(key: Key, r: object) -> Row:
    assert isinstance(r, PortalPassage)
    return (
        r.passage_id,
        *key,
        r.door_id,
        r.reader_id,
        r.direction.value,
        r.started_at,
        r.ended_at,
        list(r.epcs),
    )


def _status(key: Key, r: object) -> Row:
    assert isinstance(r, DeviceStatus)
    return (*key, r.device_id, r.device_type, r.state.value, r.detail, r.time)


def _dead_letter(key: Key, r: object) -> Row:
    assert isinstance(r, DeadLetter)
    return (*key, r.source, r.reason, r.raw, r.received_at)


_KEY_COLUMNS = ("gateway_id", "boot_id", "seq")
_KEY_TYPES = ("text", "uuid", "int8")

TARGETS: dict[type, Target] = {
    Reading: Target(
        "readings",
        ("time", "sensor_id", "value", "unit", "quality", "received_at", *_KEY_COLUMNS),
        ("timestamptz", "text", "float8", "text", "text", "timestamptz", *_KEY_TYPES),
        _reading,
    ),
    TagRead: Target(
        "tag_reads",
        (
            "time",
            "last_seen",
            "reader_id",
            "antenna",
            "epc",
            "rssi",
            "read_count",
            "received_at",
            *_KEY_COLUMNS,
        ),
        (
            "timestamptz",
            "timestamptz",
            "text",
            "int4",
            "text",
            "float8",
            "int4",
            "timestamptz",
            *_KEY_TYPES,
        ),
        _tag_read,
    ),
    PortalPassage: Target(
        "portal_passages",
        (
            "passage_id",
            *_KEY_COLUMNS,
            "door_id",
            "reader_id",
            "direction",
            "started_at",
            "ended_at",
            "epcs",
        ),
        ("text", *_KEY_TYPES, "text", "text", "text", "timestamptz", "timestamptz", "text[]"),
        _passage,
    ),
    DeviceStatus: Target(
        "device_status",
        (*_KEY_COLUMNS, "device_id", "device_type", "state", "detail", "time"),
        (*_KEY_TYPES, "text", "text", "text", "text", "timestamptz"),
        _status,
    ),
    DeadLetter: Target(
        "dead_letters",
        (*_KEY_COLUMNS, "source", "reason", "raw", "received_at"),
        (*_KEY_TYPES, "text", "text", "bytea", "timestamptz"),
        _dead_letter,
    ),
}


@dataclass(frozen=True)
class StoreResult:
    stored_through: int
    stored: int
    """How many records this call stored (0 for a pure resend)."""
    batch_id: int | None


async def store_batch(conn: AsyncConnection[TupleRow], batch: Batch) -> StoreResult:
    """Writes what is new in ``batch`` and advances the stream; commits before returning."""
    async with conn.transaction():
        stored_through = await _lock_stream(conn, batch.gateway_id, batch.boot_id)
        fresh = [item for item in batch.records if item.seq > stored_through]
        if not fresh:
            return StoreResult(stored_through, 0, None)
        if fresh[0].seq != stored_through + 1:
            raise SequenceGapError(expected=stored_through + 1, got=fresh[0].seq)
        await _copy_records(conn, batch.gateway_id, batch.boot_id, fresh)
        span = _time_span(fresh)
        cur = await conn.execute(
            "INSERT INTO ingest_batches (gateway_id, boot_id, first_seq, last_seq, record_count,"
            " time_min, time_max) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING batch_id",
            (batch.gateway_id, batch.boot_id, fresh[0].seq, fresh[-1].seq, len(fresh), *span),
        )
        row = await cur.fetchone()
        assert row is not None
        await conn.execute(
            "UPDATE gateway_streams SET stored_through = %s, updated_at = now()"
            " WHERE gateway_id = %s AND boot_id = %s",
            (fresh[-1].seq, batch.gateway_id, batch.boot_id),
        )
        # Delivered to listeners only when the transaction commits.
        await conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, batch.gateway_id))
    return StoreResult(fresh[-1].seq, len(fresh), int(row[0]))


async def _lock_stream(conn: AsyncConnection[TupleRow], gateway_id: str, boot_id: UUID) -> int:
    key = (gateway_id, boot_id)
    cur = await conn.execute(
        "SELECT stored_through FROM gateway_streams"
        " WHERE gateway_id = %s AND boot_id = %s FOR UPDATE",
        key,
    )
    row = await cur.fetchone()
    if row is None:
        # A new boot: two workers may race to create it; the loser waits on the winner's row.
        await conn.execute(
            "INSERT INTO gateway_streams (gateway_id, boot_id) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING",
            key,
        )
        await conn.execute(
            "INSERT INTO processor_streams (gateway_id, boot_id) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING",
            key,
        )
        cur = await conn.execute(
            "SELECT stored_through FROM gateway_streams"
            " WHERE gateway_id = %s AND boot_id = %s FOR UPDATE",
            key,
        )
        row = await cur.fetchone()
        assert row is not None
    return int(row[0])


async def _copy_records(
    conn: AsyncConnection[TupleRow], gateway_id: str, boot_id: UUID, items: Sequence[Sequenced]
) -> None:
    grouped: dict[type, list[Row]] = {}
    for item in items:
        target = TARGETS[type(item.record)]
        grouped.setdefault(type(item.record), []).append(
            target.row((gateway_id, boot_id, item.seq), item.record)
        )
    for kind, rows in grouped.items():
        await copy_through_staging(conn, TARGETS[kind], rows)


async def copy_through_staging(
    conn: AsyncConnection[TupleRow], target: Target, rows: Sequence[Row]
) -> None:
    """Binary COPY into a session temp table, then INSERT … ON CONFLICT DO NOTHING."""
    stage = sql.Identifier(f"stage_{target.table}")
    columns = sql.SQL(", ").join(map(sql.Identifier, target.columns))
    # ON COMMIT DELETE ROWS: the staging table is empty at the start of every transaction.
    await conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        ).format(stage, sql.Identifier(target.table))
    )
    async with conn.cursor() as cur:
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(stage, columns)
        async with cur.copy(copy_sql) as copy:
            copy.set_types(list(target.types))
            for row in rows:
                await copy.write_row(row)
        await cur.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
                sql.Identifier(target.table), columns, columns, stage
            )
        )


def _time_span(items: Sequence[Sequenced]) -> tuple[datetime | None, datetime | None]:
    times = [
        r.time if isinstance(r, Reading) else r.first_seen
        for r in (item.record for item in items)
        if isinstance(r, Reading | TagRead)
    ]
    if not times:
        return (None, None)
    return (min(times), max(times))
