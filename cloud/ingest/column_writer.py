"""Stores a readings-only batch from its columns: the same transaction as ``writer.store_batch``,
without a Python object per record on the way.

The stream's row is locked and its high-water mark read first, exactly as for any batch; records
at or below it are skipped and the rest must continue the stream. The new rows are binary-COPYed
straight into ``readings``: the locked high-water mark is what keeps a record from being stored
twice (``writer``), so no staging table and ``ON CONFLICT`` pass is needed, and a row that
somehow collided would fail the whole batch (nothing is skipped silently).

Whatever is uncommon goes back to the general path (``FallBack``, raised before anything is
written, so the transaction rolls back empty): a sensor the gateway may not write for (its
records become dead letters there) or a batch that may span more chunks than allowed (refused
there with the usual message).
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import repeat

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.ingest import SequenceGapError
from cloud.ingest.columns import ReadingColumns
from cloud.ingest.refusals import subjects, writer_of
from cloud.ingest.scope import judge
from cloud.ingest.writer import (
    TARGETS,
    StoreResult,
    advance_stream,
    chunk_intervals,
    lock_stream,
    touched_chunks,
)
from cloud.storage.database import Timeouts, set_timeouts
from protocols.records import Reading

_READINGS = TARGETS[Reading]
_COPY = "COPY readings ({}) FROM STDIN (FORMAT BINARY)".format(", ".join(_READINGS.columns))


class FallBack(Exception):  # noqa: N818 - a signal to the caller, not an error
    """The batch needs the general path; nothing of it was written."""


async def store_columns(
    conn: AsyncConnection[TupleRow],
    cols: ReadingColumns,
    *,
    max_chunks: int | None = None,
    timeouts: Timeouts | None = None,
) -> StoreResult:
    """Writes what is new in ``cols`` and advances the stream; commits before returning.

    Raises ``FallBack`` (after rolling back) when the batch needs ``writer.store_batch``.
    """
    async with conn.transaction():
        if timeouts is not None:
            await set_timeouts(conn, timeouts, local=True)
        stored_through = await lock_stream(conn, cols.gateway_id, cols.boot_id)
        if cols.last_seq <= stored_through:
            return StoreResult(stored_through, 0, None)
        if cols.first_seq <= stored_through:
            cols = cols.tail(stored_through + 1)
        elif cols.first_seq != stored_through + 1:
            raise SequenceGapError(expected=stored_through + 1, got=cols.first_seq)
        await _check_scope(conn, cols)
        if max_chunks is not None and len(cols.times) > max_chunks:
            await _check_chunks(conn, cols, max_chunks)
        await _copy(conn, cols)
        await _queue_hours(conn, cols)
        span = (min(cols.times), max(cols.times))
        count = len(cols.times)
        batch_id = await advance_stream(
            conn, cols, first_seq=cols.first_seq, last_seq=cols.last_seq, count=count, span=span
        )
    return StoreResult(cols.last_seq, count, batch_id)


async def _check_scope(conn: AsyncConnection[TupleRow], cols: ReadingColumns) -> None:
    """Judged once per sensor, as the general path does; any refusal falls back to it."""
    writer, _ = await writer_of(conn, cols.gateway_id)
    sensors = set(cols.sensor_ids)
    known = await subjects(conn, sensors)
    t = cols.times[0]
    for sensor in sensors:
        # judge() reads only the kind and the sensor of a reading: no validation needed.
        probe = Reading.model_construct(sensor_id=sensor, time=t, value=None, received_at=t)
        if judge(writer, probe, known) is not None:
            raise FallBack


async def _check_chunks(conn: AsyncConnection[TupleRow], cols: ReadingColumns, limit: int) -> None:
    interval = (await chunk_intervals(conn)).get("readings")
    if interval is not None and touched_chunks(cols.times, interval) > limit:
        raise FallBack  # the general path refuses it, naming the limit


async def _copy(conn: AsyncConnection[TupleRow], cols: ReadingColumns) -> None:
    """Binary COPY from the columns; every value was checked by ``columns.decode_readings``."""
    n = len(cols.times)
    rows = zip(
        cols.times, cols.sensor_ids, cols.values, cols.units, cols.qualities, cols.received_at,
        repeat(cols.gateway_id, n), repeat(cols.boot_id, n),
        range(cols.first_seq, cols.last_seq + 1), strict=True,
    )  # fmt: skip
    async with conn.cursor() as cur, cur.copy(_COPY) as copy:
        copy.set_types(list(_READINGS.types))
        for row in rows:
            await copy.write_row(row)


async def _queue_hours(conn: AsyncConnection[TupleRow], cols: ReadingColumns) -> None:
    """The (sensor, UTC hour) buckets for the rollup job, as ``rollups.queue_touched`` does."""
    hours = sorted(
        set(
            zip(
                cols.sensor_ids,
                [_hour(t) for t in cols.times],
                strict=True,
            )
        )
    )
    await conn.execute(
        "INSERT INTO rollup_queue (sensor_id, hour)"
        " SELECT * FROM unnest(%s::text[], %s::timestamptz[])",
        ([s for s, _ in hours], [h for _, h in hours]),
    )


def _hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0, tzinfo=UTC)
