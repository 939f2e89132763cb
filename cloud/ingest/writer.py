"""Stores one batch in ONE transaction, guarded by the stream's high-water mark.

The (gateway, boot) row of ``gateway_streams`` is locked first, so two workers writing the same
stream are serialised and a resend sees what the first attempt committed. Records at or below
``stored_through`` are skipped: that, not a unique key, is the idempotency guard (a resent record
whose device time changed would slip past a ``(…, seq, time)`` key on a hypertable). The rest must
continue the stream without a gap. New records go through binary COPY into session-local staging
tables and from there into the real tables with ``ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from typing import Protocol
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.rows import TupleRow

from cloud.ingest import InvalidBatchError, SequenceGapError
from cloud.ingest.admission import chunks_touched
from cloud.ingest.refusals import (
    RefusedRecord,
    count_refusals,
    store_refused,
    subjects,
    tally,
    writer_of,
)
from cloud.ingest.scope import Verdict, judge, scope_key, subject_ids
from cloud.jobs.rollups import queue_touched
from cloud.storage.database import Timeouts, set_timeouts
from protocols.batch import Batch, OutboxReport, Sequenced
from protocols.records import (
    INT4_MAX,
    INT8_MAX,
    DeadLetter,
    DeviceStatus,
    PortalPassage,
    Reading,
    TagRead,
)

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
        r.quality.value,
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
            "quality",
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
            "text",
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


# Columns checked per row before COPY. The key columns (gateway_id, boot_id, seq) are checked
# once per batch by the contract (``protocols.batch``); times are bounded by ``UtcDatetime``.
_CHECKED: dict[str, tuple[int, ...]] = {
    t.table: tuple(
        i
        for i, (column, kind) in enumerate(zip(t.columns, t.types, strict=True))
        if column not in _KEY_COLUMNS and kind in ("int4", "int8", "float8", "text", "text[]")
    )
    for t in TARGETS.values()
}


@dataclass(frozen=True)
class StoreResult:
    stored_through: int
    stored: int
    """How many records this call stored (0 for a pure resend), refused ones included."""
    batch_id: int | None
    refused: int = 0
    """How many of them were refused for their scope and kept as dead letters."""


async def store_batch(
    conn: AsyncConnection[TupleRow],
    batch: Batch,
    *,
    max_chunks: int | None = None,
    timeouts: Timeouts | None = None,
) -> StoreResult:
    """Writes what is new in ``batch`` and advances the stream; commits before returning.

    Records the gateway may not write (``cloud.ingest.scope``) are kept as dead letters with the
    reason instead of in their tables. ``max_chunks`` bounds the hypertable chunks the batch
    writes into (``InvalidBatchError`` above it; None: unbounded). ``timeouts`` bound this
    transaction (the stream's row lock is waited for at most ``timeouts.lock``).
    """
    async with conn.transaction():
        if timeouts is not None:
            await set_timeouts(conn, timeouts, local=True)
        stored_through = await lock_stream(conn, batch.gateway_id, batch.boot_id)
        fresh = [item for item in batch.records if item.seq > stored_through]
        if not fresh:
            return StoreResult(stored_through, 0, None)
        if fresh[0].seq != stored_through + 1:
            raise SequenceGapError(expected=stored_through + 1, got=fresh[0].seq)
        admitted, refused, now = await _scope(conn, batch.gateway_id, fresh)
        if max_chunks is not None:
            await _bound_chunks(conn, admitted, max_chunks)
        await store_refused(conn, batch.gateway_id, batch.boot_id, refused, now)
        await count_refusals(conn, batch.gateway_id, *tally(refused, admitted))
        await _copy_records(conn, batch, admitted)
        await queue_touched(conn, admitted)  # the rollup job recomputes these hours
        span = _time_span(admitted)
        batch_id = await advance_stream(
            conn, batch, first_seq=fresh[0].seq, last_seq=fresh[-1].seq, count=len(fresh), span=span
        )
    return StoreResult(fresh[-1].seq, len(fresh), batch_id, len(refused))


class StreamHeader(Protocol):
    """What ``advance_stream`` needs of a batch (a ``Batch`` or its columns)."""

    @property
    def gateway_id(self) -> str: ...
    @property
    def boot_id(self) -> UUID: ...
    @property
    def sent_at(self) -> datetime: ...
    @property
    def outbox(self) -> OutboxReport | None: ...


async def record_clock(conn: AsyncConnection[TupleRow], gateway_id: str, sent_at: datetime) -> None:
    """The gateway's clock as measured now: ``sent_at`` (its clock) against the cloud's receipt.

    Batches and heartbeats both call it, so the skew shown and judged (``gateways.clock_sent_at
    - clock_received_at``) is that of the gateway's latest contact carrying a ``sent_at``.

    Written only when the skew moved by more than a second or the measure is 30 s old, and
    skipped while another transaction holds the row: every batch would otherwise rewrite the
    gateway's row and serialise its streams' batches on it, for a figure judged in minutes.
    """
    await conn.execute(
        "UPDATE gateways SET clock_sent_at = %(sent)s, clock_received_at = now()"
        " WHERE gateway_id = (SELECT gateway_id FROM gateways WHERE gateway_id = %(gw)s"
        "  AND (clock_received_at IS NULL OR clock_received_at < now() - interval '30 seconds'"
        "   OR abs(extract(epoch FROM (clock_sent_at - clock_received_at))"
        "          - extract(epoch FROM (%(sent)s - now()))) > 1)"
        "  FOR UPDATE SKIP LOCKED)",
        {"sent": sent_at, "gw": gateway_id},
    )


async def advance_stream(
    conn: AsyncConnection[TupleRow],
    batch: StreamHeader,
    *,
    first_seq: int,
    last_seq: int,
    count: int,
    span: tuple[datetime | None, datetime | None],
) -> int:
    """Records the stored batch for the processor, moves the high-water mark and notifies;
    inside the batch's transaction. Returns the new ``ingest_batches`` id."""
    cur = await conn.execute(
        "INSERT INTO ingest_batches (gateway_id, boot_id, first_seq, last_seq, record_count,"
        " time_min, time_max) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING batch_id",
        (batch.gateway_id, batch.boot_id, first_seq, last_seq, count, *span),
    )
    row = await cur.fetchone()
    assert row is not None
    # sent_at against the cloud's receipt: the gateway's clock skew (device API).
    # The outbox depth it reports (NULL from gateways that do not): the gateway panel's.
    report = batch.outbox
    await conn.execute(
        "UPDATE gateway_streams SET stored_through = %s, updated_at = now(),"
        " last_sent_at = %s, last_received_at = now(), outbox_pending = %s,"
        " outbox_oldest_age = %s WHERE gateway_id = %s AND boot_id = %s",
        (last_seq, batch.sent_at, None if report is None else report.pending,
         None if report is None else report.oldest_age, batch.gateway_id, batch.boot_id),
    )  # fmt: skip
    await record_clock(conn, batch.gateway_id, batch.sent_at)
    # Delivered to listeners only when the transaction commits.
    await conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, batch.gateway_id))
    return int(row[0])


async def _scope(
    conn: AsyncConnection[TupleRow], gateway_id: str, fresh: Sequence[Sequenced]
) -> tuple[list[Sequenced], list[RefusedRecord], datetime]:
    """Splits records into those the gateway may write and those refused for their scope.

    Master data is read inside the stream's transaction: a mount that commits later applies to
    later batches.
    """
    writer, now = await writer_of(conn, gateway_id)
    known = await subjects(conn, subject_ids(item.record for item in fresh))
    admitted: list[Sequenced] = []
    refused: list[RefusedRecord] = []
    verdicts: dict[tuple[str, ...], Verdict | None] = {}  # one judgement per subject
    for item in fresh:
        key = scope_key(item.record)
        if key not in verdicts:
            verdicts[key] = judge(writer, item.record, known)
        verdict = verdicts[key]
        if verdict is None:
            admitted.append(item)
        else:
            refused.append(RefusedRecord(item, verdict))
    return admitted, refused, now


_PARTITIONED = {"readings": Reading, "tag_reads": TagRead}


async def _bound_chunks(
    conn: AsyncConnection[TupleRow], items: Sequence[Sequenced], limit: int
) -> None:
    """Refuses a batch whose readings and tag reads would write into more than ``limit`` chunks.

    Every chunk written (and more so created) takes locks on the chunk and its indexes until
    commit; thousands of them exhaust the lock table ("out of shared memory"), which used to
    answer 503 and be retried for ever. A 422 naming no record makes the edge halve its batches.
    """
    times: dict[type, list[datetime]] = {Reading: [], TagRead: []}
    for item in items:
        r = item.record
        if isinstance(r, Reading):
            times[Reading].append(r.time)
        elif isinstance(r, TagRead):
            times[TagRead].append(r.first_seen)
    if len(times[Reading]) + len(times[TagRead]) <= limit:
        return  # cannot touch more chunks than it has records
    intervals = await chunk_intervals(conn)
    touched = {
        table: touched_chunks(times[kind], intervals[table])
        for table, kind in _PARTITIONED.items()
        if table in intervals and times[kind]
    }
    if sum(touched.values()) > limit:
        spread = ", ".join(f"{n} of {table}" for table, n in sorted(touched.items()))
        message = (
            f"the batch would write into {sum(touched.values())} chunks ({spread}); at most"
            f" {limit} per batch: send fewer records per batch"
        )
        raise InvalidBatchError(message, [{"loc": ["records"], "msg": message, "type": "chunks"}])


def touched_chunks(times: list[datetime], interval: timedelta) -> int:
    # The usual batch (minutes to hours of readings) spans less than one interval: it lies in
    # one or two chunks and its earliest and latest times are in each, so they alone say how
    # many; only a long backlog is bucketed time by time.
    first, last = min(times), max(times)
    if last - first < interval:
        return chunks_touched([first, last], interval)
    return chunks_touched(times, interval)


async def chunk_intervals(conn: AsyncConnection[TupleRow]) -> dict[str, timedelta]:
    """The time-partitioning interval of ``readings`` and ``tag_reads`` where they are
    hypertables (empty on plain PostgreSQL)."""
    cur = await conn.execute("SELECT to_regclass('_timescaledb_catalog.dimension') IS NOT NULL")
    row = await cur.fetchone()
    if row is None or not row[0]:
        return {}
    cur = await conn.execute(
        "SELECT h.table_name, d.interval_length FROM _timescaledb_catalog.hypertable h"
        " JOIN _timescaledb_catalog.dimension d ON d.hypertable_id = h.id"
        " WHERE h.schema_name = current_schema() AND h.table_name = ANY(%s)"
        " AND d.interval_length IS NOT NULL",
        (list(_PARTITIONED),),
    )
    return {
        str(table): timedelta(microseconds=int(length)) for table, length in await cur.fetchall()
    }


async def lock_stream(conn: AsyncConnection[TupleRow], gateway_id: str, boot_id: UUID) -> int:
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
    conn: AsyncConnection[TupleRow], batch: Batch, items: Sequence[Sequenced]
) -> None:
    grouped: dict[type, list[Sequenced]] = {}
    for item in items:
        grouped.setdefault(type(item.record), []).append(item)
    problems: list[dict[str, object]] = []
    staged: list[tuple[Target, list[Row]]] = []
    for kind, members in grouped.items():
        target = TARGETS[kind]
        key = (batch.gateway_id, batch.boot_id)
        rows = [target.row((*key, m.seq), m.record) for m in members]
        for position, column, message in column_problems(target, rows):
            item = members[position]
            problems.append(
                {
                    "loc": ["records", item.seq - batch.first_seq, "record", item.record.kind],
                    "seq": item.seq,
                    "msg": f"{column}: {message}",
                    "type": "value_error",
                }
            )
        staged.append((target, rows))
    if problems:
        raise InvalidBatchError("values do not fit their columns", problems[:1000])
    for target, rows in staged:
        await copy_through_staging(conn, target, rows)


_INT_RANGE = {"int4": (-INT4_MAX - 1, INT4_MAX), "int8": (-INT8_MAX - 1, INT8_MAX)}


def _int_problem(column_type: str, value: object) -> str | None:
    low, high = _INT_RANGE[column_type]
    if isinstance(value, int) and low <= value <= high:
        return None
    return f"{value!r} does not fit {column_type}"


def _float_problem(_: str, value: object) -> str | None:
    if isinstance(value, float | int) and math.isfinite(value):
        return None
    return f"{value!r} is not a finite float8"


def _text_problem(_: str, value: object) -> str | None:
    if isinstance(value, str) and "\x00" not in value:
        return None
    return "text must be a string without NUL characters"


def _texts_problem(_: str, value: object) -> str | None:
    if isinstance(value, list) and not any(_text_problem("text", v) for v in value):
        return None
    return "text[] must hold strings without NUL characters"


# Binary COPY wraps integers silently and takes any float: every value is checked first.
_VALUE_CHECKS: dict[str, Callable[[str, object], str | None]] = {
    "int4": _int_problem,
    "int8": _int_problem,
    "float8": _float_problem,
    "text": _text_problem,
    "text[]": _texts_problem,
}


def _column_fits(column_type: str, values: list[object]) -> bool:
    """True when every value surely fits, checked a column at a time in C-level builtins; False
    sends the column through the per-value checks that name the culprits."""
    try:
        if column_type in _INT_RANGE:
            low, high = _INT_RANGE[column_type]
            ints = [v for v in values if type(v) is int]
            return len(ints) == len(values) and low <= min(ints) and max(ints) <= high
        if column_type == "float8":
            return all(map(math.isfinite, values))  # type: ignore[arg-type]
        if column_type == "text":
            return "\x00" not in "".join(values)  # type: ignore[arg-type]
        if column_type == "text[]":
            return "\x00" not in "".join(chain.from_iterable(values))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False  # not all of the expected type: the per-value checks say which
    return True


def column_problems(target: Target, rows: Sequence[Row]) -> list[tuple[int, str, str]]:
    """(row position, column, why) for every value that does not fit its column's type.

    >>> column_problems(TARGETS[TagRead], [(None,) * 6 + (2**31,) + (None,) * 5])
    [(0, 'read_count', '2147483648 does not fit int4')]
    """
    found: list[tuple[int, str, str]] = []
    for index in _CHECKED[target.table]:
        column_type = target.types[index]
        values = [row[index] for row in rows if row[index] is not None]
        if not values or _column_fits(column_type, values):
            continue
        check = _VALUE_CHECKS[column_type]
        for position, row in enumerate(rows):
            value = row[index]
            why = None if value is None else check(column_type, value)
            if why is not None:
                found.append((position, target.columns[index], why))
    return sorted(found)


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
