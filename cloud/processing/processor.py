"""The processor: committed batches, stream by stream in seq order, effects exactly once.

Each pass claims one stream with ``SELECT … FOR UPDATE SKIP LOCKED`` on its ``processor_streams``
row (so several processors share the streams and never work on one stream at once). The claim
walks unprocessed batches in arrival order (partial index, migration 0071), so its cost follows
what is pending, not how many streams exist, and no stream starves. It takes the stream's oldest
unprocessed batch, rebuilds its records and, in the same transaction, runs every step, updates
the devices, marks the batch processed and advances ``processed_through`` — kept on
``processor_streams``, which only processors lock: a processor never waits for ingest's
``gateway_streams`` row lock, and ingest never waits for a processor. A crash before commit
leaves the batch unprocessed: it is replayed and its effects happen once.

Every transaction runs under ``ProcessorSettings.timeouts`` (statement, lock and idle bounds).

A step that fails (or times out) rolls back to a savepoint; the failure is recorded on the claim
row with a retry time (exponential backoff), and other streams go on. The stream waits rather
than skipping the batch: later batches must not be processed before it. After ``stall_after``
failures in a row the stream is *stalled*: ``stalled_since`` is set and a critical
``stream_stalled`` alert is raised (health, the devices API and the dashboard show it; an admin
may set the batch aside, ``cloud.processing.streams``). Success clears it (``stream_resumed``).

Wake-ups come from LISTEN/NOTIFY (ingest notifies on commit), with polling as the fallback.

Exception tree::

    ProcessorError
    └── StreamOutOfOrderError   the next batch does not continue processed_through
    (rebuild.BatchIncompleteError: a batch's rows are missing)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg import AsyncConnection, InterfaceError, OperationalError
from psycopg import errors as pg_errors
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from cloud.config import ProcessorSettings
from cloud.ingest.writer import NOTIFY_CHANNEL
from cloud.jobs.wake import wait_any
from cloud.processing.devices import update_devices
from cloud.processing.rebuild import BatchRow, rebuild
from cloud.processing.stalls import StreamKey, raise_resumed, raise_stalled
from cloud.processing.steps import ProcessingBatch, Step
from cloud.storage.database import set_timeouts

log = logging.getLogger(__name__)

_TRANSIENT = (OperationalError, InterfaceError, PoolTimeout)
# Errors of one statement, not of the connection: after the savepoint rolls back, the
# transaction goes on and the failure is recorded against the stream like any other.
_STATEMENT_ERRORS = (
    pg_errors.QueryCanceled,
    pg_errors.LockNotAvailable,
    pg_errors.DeadlockDetected,
    pg_errors.SerializationFailure,
)

CLAIM_SQL = """
SELECT c.gateway_id, c.boot_id
FROM ingest_batches b
JOIN processor_streams c ON c.gateway_id = b.gateway_id AND c.boot_id = b.boot_id
WHERE b.processed_at IS NULL AND (c.retry_at IS NULL OR c.retry_at <= now())
ORDER BY b.batch_id
LIMIT 1
FOR UPDATE OF c SKIP LOCKED
"""
"""Public so that the benchmark and the plan test EXPLAIN exactly this query."""

_NEXT_BATCH_SQL = """
SELECT b.batch_id, b.gateway_id, b.boot_id, b.first_seq, b.last_seq, b.record_count,
       b.received_at, b.time_min, b.time_max,
       c.processed_through, s.stored_through, c.failures, c.failing_batch_id, c.stalled_since
FROM processor_streams c
JOIN gateway_streams s USING (gateway_id, boot_id)
LEFT JOIN LATERAL (
    SELECT * FROM ingest_batches i
    WHERE i.gateway_id = c.gateway_id AND i.boot_id = c.boot_id AND i.processed_at IS NULL
    ORDER BY i.first_seq LIMIT 1
) b ON true
WHERE c.gateway_id = %s AND c.boot_id = %s
"""


@dataclass(frozen=True)
class _Stream:
    gateway_id: str
    boot_id: UUID
    processed_through: int
    stored_through: int
    failures: int
    failing_batch_id: int | None
    stalled_since: datetime | None


class ProcessorError(RuntimeError):
    """The processor found the bookkeeping in a state it must not paper over."""


class StreamOutOfOrderError(ProcessorError):
    """The oldest unprocessed batch does not start right after ``processed_through``."""


class Processor:
    """Runs ``steps`` over committed batches; see the module docstring."""

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[TupleRow]],
        steps: Sequence[Step],
        settings: ProcessorSettings,
        *,
        listen_url: str,
    ) -> None:
        self._pool = pool
        self._listen_url = listen_url
        self._steps = tuple(steps)
        self._settings = settings

    async def process_next(self) -> bool:
        """Processes one batch of one stream; False when no stream has work right now."""
        async with self._pool.connection() as conn, conn.transaction():
            await set_timeouts(conn, self._settings.timeouts, local=True)
            cur = await conn.execute(CLAIM_SQL)
            claim = await cur.fetchone()
            if claim is None:
                return False
            cur = await conn.execute(_NEXT_BATCH_SQL, (claim[0], claim[1]))
            row = await cur.fetchone()
            assert row is not None  # the claim row's foreign key guarantees the stream
            stream = _Stream(
                gateway_id=str(claim[0]),
                boot_id=claim[1],
                processed_through=int(row[9]),
                stored_through=int(row[10]),
                failures=int(row[11]),
                failing_batch_id=None if row[12] is None else int(row[12]),
                stalled_since=row[13],
            )
            if row[0] is None and stream.processed_through >= stream.stored_through:
                return True  # the claim's snapshot was older than another processor's commit
            try:
                async with conn.transaction():  # a savepoint: a failing step rolls back to here
                    batch = _checked(row, stream)
                    await self._apply(conn, batch)
            except _TRANSIENT as err:
                if not isinstance(err, _STATEMENT_ERRORS) or conn.broken:
                    raise
                await self._record_failure(conn, stream, row[0], err)
            except Exception as err:  # any step failure is recorded on the claim, not lost
                await self._record_failure(conn, stream, row[0], err)
            else:
                if stream.stalled_since is not None:
                    key = StreamKey(stream.gateway_id, stream.boot_id)
                    await raise_resumed(conn, key, batch.batch_id)
            return True

    async def drain(self) -> int:
        """Processes until no stream has work; returns the number of passes that did work."""
        done = 0
        while await self.process_next():
            done += 1
        return done

    async def run(self, stop: asyncio.Event) -> None:
        """Works until ``stop`` is set: listener and worker under one task group."""
        wake = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._listen(wake, stop))
            group.create_task(self._work(wake, stop))

    async def _apply(self, conn: AsyncConnection[TupleRow], row: BatchRow) -> None:
        records = await rebuild(conn, row)
        batch = ProcessingBatch(
            batch_id=row.batch_id,
            gateway_id=row.gateway_id,
            boot_id=row.boot_id,
            first_seq=row.first_seq,
            last_seq=row.last_seq,
            received_at=row.received_at,
            records=tuple(records),
        )
        for step in self._steps:
            await step.apply(conn, batch)
        await update_devices(conn, row.gateway_id, records, row.received_at)
        await conn.execute(
            "UPDATE ingest_batches SET processed_at = now() WHERE batch_id = %s", (row.batch_id,)
        )
        await conn.execute(
            "UPDATE processor_streams SET processed_through = %s, failures = 0,"
            " last_error = NULL, retry_at = NULL, failing_batch_id = NULL,"
            " failing_since = NULL, stalled_since = NULL, updated_at = now()"
            " WHERE gateway_id = %s AND boot_id = %s",
            (row.last_seq, row.gateway_id, row.boot_id),
        )

    async def _record_failure(
        self,
        conn: AsyncConnection[TupleRow],
        stream: _Stream,
        batch_id: int | None,
        err: Exception,
    ) -> None:
        same_batch = batch_id is not None and batch_id == stream.failing_batch_id
        failures = stream.failures + 1 if same_batch else 1
        delay = min(
            self._settings.retry_initial * (2 ** min(failures - 1, 30)), self._settings.retry_max
        )
        message = repr(err)[:4000]
        stalls = failures >= self._settings.stall_after and stream.stalled_since is None
        log.error(
            "processing %s/%s batch %s failed (%d in a row), retry in %s: %s",
            stream.gateway_id, stream.boot_id, batch_id, failures, delay, message,
        )  # fmt: skip
        await conn.execute(
            "UPDATE processor_streams SET failures = %(failures)s, last_error = %(error)s,"
            " retry_at = clock_timestamp() + %(delay)s, failing_batch_id = %(batch)s,"
            " failing_since = CASE WHEN %(same)s THEN coalesce(failing_since, now())"
            " ELSE now() END,"
            " stalled_since = CASE WHEN %(stalls)s THEN now() ELSE stalled_since END,"
            " updated_at = now()"
            " WHERE gateway_id = %(gateway)s AND boot_id = %(boot)s",
            {
                "failures": failures, "error": message, "delay": delay, "batch": batch_id,
                "same": same_batch, "stalls": stalls,
                "gateway": stream.gateway_id, "boot": stream.boot_id,
            },
        )  # fmt: skip
        if stalls:
            key = StreamKey(stream.gateway_id, stream.boot_id)
            await raise_stalled(conn, key, batch_id, failures=failures, error=message)

    async def _work(self, wake: asyncio.Event, stop: asyncio.Event) -> None:
        while not stop.is_set():
            wake.clear()  # before draining, so a NOTIFY during the drain is not lost
            try:
                while not stop.is_set() and await self.process_next():
                    pass
                timeout = self._settings.poll_interval
            except _TRANSIENT as err:
                log.warning("processor: database unavailable (%s), retrying", err)
                timeout = self._settings.reconnect_delay
            await wait_any(wake, stop, timeout)

    async def _listen(self, wake: asyncio.Event, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with await AsyncConnection.connect(self._listen_url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    wake.set()  # catch up with whatever was committed while not listening
                    while not stop.is_set():
                        async for _ in conn.notifies(timeout=0.5):
                            wake.set()
            except _TRANSIENT as err:
                log.info("processor: listener reconnecting (%s)", err)
                await wait_any(stop, stop, self._settings.reconnect_delay)


def _checked(row: TupleRow, stream: _Stream) -> BatchRow:
    """The stream's next batch, which must start right after ``processed_through``."""
    name = f"{stream.gateway_id}/{stream.boot_id}"
    if row[0] is None:
        raise StreamOutOfOrderError(
            f"stream {name}: stored through {stream.stored_through}, processed through"
            f" {stream.processed_through}, but no unprocessed batch is recorded"
        )
    batch = BatchRow(*row[:9])
    if batch.first_seq != stream.processed_through + 1:
        raise StreamOutOfOrderError(
            f"stream {name}: next batch {batch.batch_id} starts at {batch.first_seq},"
            f" processed through {stream.processed_through}"
        )
    return batch
