"""The processor: committed batches, stream by stream in seq order, effects exactly once.

Each pass claims one stream with ``SELECT … FOR UPDATE SKIP LOCKED`` on its ``processor_streams``
row (so several processors share the streams and never work on one stream at once), takes the
stream's oldest unprocessed batch, rebuilds its records and, in the same transaction, runs every
step, updates the devices, marks the batch processed and advances ``processed_through``. A crash
before commit leaves the batch unprocessed: it is replayed and its effects happen once.

A step that fails rolls back to a savepoint; the failure is recorded on the claim row with a
retry time (exponential backoff), and other streams go on. The stream waits rather than skipping
the batch: later batches must not be processed before it.

Wake-ups come from LISTEN/NOTIFY (ingest notifies on commit), with polling as the fallback.

Exception tree::

    ProcessorError
    └── StreamOutOfOrderError   the next batch does not continue processed_through
    (rebuild.BatchIncompleteError: a batch's rows are missing)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

from psycopg import AsyncConnection, InterfaceError, OperationalError
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from cloud.config import ProcessorSettings
from cloud.ingest.writer import NOTIFY_CHANNEL
from cloud.processing.devices import update_devices
from cloud.processing.rebuild import BatchRow, rebuild
from cloud.processing.steps import ProcessingBatch, Step

log = logging.getLogger(__name__)

_TRANSIENT = (OperationalError, InterfaceError, PoolTimeout)

_CLAIM_SQL = """
SELECT c.gateway_id, c.boot_id, c.failures
FROM processor_streams c JOIN gateway_streams s USING (gateway_id, boot_id)
WHERE s.processed_through < s.stored_through AND (c.retry_at IS NULL OR c.retry_at <= now())
ORDER BY s.updated_at
LIMIT 1
FOR UPDATE OF c SKIP LOCKED
"""

_NEXT_BATCH_SQL = """
SELECT b.batch_id, b.gateway_id, b.boot_id, b.first_seq, b.last_seq, b.record_count,
       b.received_at, b.time_min, b.time_max, s.processed_through, s.stored_through
FROM gateway_streams s LEFT JOIN LATERAL (
    SELECT * FROM ingest_batches i
    WHERE i.gateway_id = s.gateway_id AND i.boot_id = s.boot_id AND i.processed_at IS NULL
    ORDER BY i.first_seq LIMIT 1
) b ON true
WHERE s.gateway_id = %s AND s.boot_id = %s
"""


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
            cur = await conn.execute(_CLAIM_SQL)
            claim = await cur.fetchone()
            if claim is None:
                return False
            gateway_id, boot_id, failures = str(claim[0]), claim[1], int(claim[2])
            cur = await conn.execute(_NEXT_BATCH_SQL, (gateway_id, boot_id))
            row = await cur.fetchone()
            assert row is not None  # the claim row's foreign key guarantees the stream
            processed_through, stored_through = int(row[9]), int(row[10])
            if processed_through >= stored_through:
                return True  # the claim query's snapshot was older than a commit; look again
            try:
                async with conn.transaction():  # a savepoint: a failing step rolls back to here
                    batch = _checked(row, gateway_id, boot_id)
                    await self._apply(conn, batch)
            except _TRANSIENT:
                raise
            except Exception as err:  # any step failure is recorded on the claim, not lost
                await self._record_failure(conn, gateway_id, boot_id, failures, err)
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
        await update_devices(conn, row.gateway_id, records)
        await conn.execute(
            "UPDATE ingest_batches SET processed_at = now() WHERE batch_id = %s", (row.batch_id,)
        )
        await conn.execute(
            "UPDATE gateway_streams SET processed_through = %s"
            " WHERE gateway_id = %s AND boot_id = %s",
            (row.last_seq, row.gateway_id, row.boot_id),
        )
        await conn.execute(
            "UPDATE processor_streams SET failures = 0, last_error = NULL, retry_at = NULL"
            " WHERE gateway_id = %s AND boot_id = %s",
            (row.gateway_id, row.boot_id),
        )

    async def _record_failure(
        self,
        conn: AsyncConnection[TupleRow],
        gateway_id: str,
        boot_id: UUID,
        failures: int,
        err: Exception,
    ) -> None:
        delay = min(
            self._settings.retry_initial * (2 ** min(failures, 30)), self._settings.retry_max
        )
        message = repr(err)[:4000]
        log.error("processing %s/%s failed, retry in %s: %s", gateway_id, boot_id, delay, message)
        await conn.execute(
            "UPDATE processor_streams SET failures = failures + 1, last_error = %s,"
            " retry_at = now() + %s WHERE gateway_id = %s AND boot_id = %s",
            (message, delay, gateway_id, boot_id),
        )

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
            await _wait_any(wake, stop, timeout)

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
                await _wait_any(stop, stop, self._settings.reconnect_delay)


def _checked(row: TupleRow, gateway_id: str, boot_id: UUID) -> BatchRow:
    """The stream's next batch, which must start right after ``processed_through``."""
    if row[0] is None:
        raise StreamOutOfOrderError(
            f"stream {gateway_id}/{boot_id}: stored through {row[10]}, processed through"
            f" {row[9]}, but no unprocessed batch is recorded"
        )
    batch = BatchRow(*row[:9])
    if batch.first_seq != int(row[9]) + 1:
        raise StreamOutOfOrderError(
            f"stream {gateway_id}/{boot_id}: next batch {batch.batch_id} starts at"
            f" {batch.first_seq}, processed through {row[9]}"
        )
    return batch


async def _wait_any(first: asyncio.Event, second: asyncio.Event, period: timedelta) -> None:
    """Returns when either event is set or ``period`` passes."""
    waits = {asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())}
    try:
        await asyncio.wait(waits, timeout=period.total_seconds(), return_when="FIRST_COMPLETED")
    finally:
        for task in waits:
            task.cancel()
        for task in waits:
            with contextlib.suppress(asyncio.CancelledError):
                await task
