"""Streams as operators see them: which are behind or stalled, and setting a stuck batch aside.

A stream whose next batch keeps failing stops (later batches must not overtake it) and is
reported stalled. If the cause cannot be fixed, an admin sets the batch aside: in one
transaction the batch is recorded in ``quarantined_batches`` with the reason, the failure count
and the last error; it is marked processed without its steps; the stream's position moves past
it; the decision goes to ``audit_log`` and a ``batch_set_aside`` alert says that its records
were stored but never judged. Only the batch the stream is failing on can be set aside, and only
while it fails, so a healthy stream cannot lose a batch by a typo.

Exception tree::

    StreamAdminError
    ├── NoSuchStreamError        no stream of that gateway (and boot)
    ├── AmbiguousStreamError     several of the gateway's streams are failing: name the boot
    ├── NotFailingError          the stream is not failing on a batch; nothing to set aside
    ├── WrongBatchError          the named batch is not the one the stream is failing on
    └── StreamBusyError          a processor holds the stream right now; try again
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from psycopg import AsyncConnection
from psycopg import errors as pg_errors
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from cloud.ingest.writer import NOTIFY_CHANNEL
from cloud.processing.stalls import StreamKey, raise_set_aside


class StreamAdminError(RuntimeError):
    """An operator's request about a stream cannot be carried out as asked."""


class NoSuchStreamError(StreamAdminError):
    pass


class AmbiguousStreamError(StreamAdminError):
    pass


class NotFailingError(StreamAdminError):
    pass


class WrongBatchError(StreamAdminError):
    pass


class StreamBusyError(StreamAdminError):
    pass


@dataclass(frozen=True)
class StreamState:
    gateway_id: str
    boot_id: UUID
    stored_through: int
    processed_through: int
    pending_batches: int
    oldest_pending_at: datetime | None
    """Arrival time of the oldest batch not yet processed."""
    failures: int
    last_error: str | None
    failing_batch_id: int | None
    failing_since: datetime | None
    stalled_since: datetime | None
    retry_at: datetime | None


_STATES_SQL = """
WITH pending AS (
    SELECT gateway_id, boot_id, count(*) AS batches, min(received_at) AS oldest
    FROM ingest_batches WHERE processed_at IS NULL
    GROUP BY gateway_id, boot_id
)
SELECT c.gateway_id, c.boot_id, s.stored_through, c.processed_through,
       coalesce(p.batches, 0), p.oldest, c.failures, c.last_error, c.failing_batch_id,
       c.failing_since, c.stalled_since, c.retry_at
FROM processor_streams c
JOIN gateway_streams s USING (gateway_id, boot_id)
LEFT JOIN pending p USING (gateway_id, boot_id)
WHERE (p.batches IS NOT NULL OR c.stalled_since IS NOT NULL OR c.failures > 0)
  AND (%(gateway)s::text IS NULL OR c.gateway_id = %(gateway)s)
  AND (NOT %(stalled)s OR c.stalled_since IS NOT NULL)
ORDER BY c.stalled_since NULLS LAST, p.oldest NULLS LAST, c.gateway_id, c.boot_id
"""


async def stream_states(
    conn: AsyncConnection[TupleRow], *, gateway_id: str | None = None, stalled_only: bool = False
) -> list[StreamState]:
    """Streams that are behind, failing or stalled (idle streams are left out), stalled first."""
    cur = await conn.execute(_STATES_SQL, {"gateway": gateway_id, "stalled": stalled_only})
    return [StreamState(*row) for row in await cur.fetchall()]


@dataclass(frozen=True)
class SetAside:
    gateway_id: str
    boot_id: UUID
    batch_id: int
    first_seq: int
    last_seq: int
    record_count: int
    failures: int
    last_error: str | None


async def set_aside(
    conn: AsyncConnection[TupleRow],
    gateway_id: str,
    *,
    reason: str,
    actor: str,
    boot_id: UUID | None = None,
    batch_id: int | None = None,
    lock_wait: timedelta = timedelta(seconds=5),
) -> SetAside:
    """Sets aside the batch ``gateway_id``'s stream is failing on; commits before returning."""
    if not reason.strip():
        raise StreamAdminError("a reason is required")
    async with conn.transaction():
        await conn.execute(
            "SELECT set_config('lock_timeout', %s, true)",
            (f"{max(1, int(lock_wait.total_seconds() * 1000))}ms",),
        )
        stream = await _failing_stream(conn, gateway_id, boot_id)
        try:
            cur = await conn.execute(
                "SELECT failures, last_error, failing_batch_id FROM processor_streams"
                " WHERE gateway_id = %s AND boot_id = %s FOR UPDATE",
                (stream.gateway_id, stream.boot_id),
            )
        except pg_errors.LockNotAvailable as err:
            raise StreamBusyError(
                f"a processor is working on {gateway_id}/{stream.boot_id}; try again"
            ) from err
        row = await cur.fetchone()
        assert row is not None
        failures, last_error, failing = int(row[0]), row[1], row[2]
        head = await _head_batch(conn, stream)
        if failing is None or failures == 0 or head is None or head[0] != failing:
            raise NotFailingError(
                f"stream {gateway_id}/{stream.boot_id} is not failing on a batch"
                " (it may have recovered); nothing was set aside"
            )
        if batch_id is not None and batch_id != head[0]:
            raise WrongBatchError(
                f"batch {batch_id} is not the batch stream {gateway_id}/{stream.boot_id} is"
                f" failing on (that is batch {head[0]})"
            )
        done = SetAside(stream.gateway_id, stream.boot_id, *head, failures, last_error)
        await _record(conn, done, reason=reason, actor=actor)
    return done


async def _failing_stream(
    conn: AsyncConnection[TupleRow], gateway_id: str, boot_id: UUID | None
) -> StreamKey:
    cur = await conn.execute(
        "SELECT boot_id, failures > 0 FROM processor_streams"
        " WHERE gateway_id = %s AND (%s::uuid IS NULL OR boot_id = %s)",
        (gateway_id, boot_id, boot_id),
    )
    rows = await cur.fetchall()
    if not rows:
        which = gateway_id if boot_id is None else f"{gateway_id}/{boot_id}"
        raise NoSuchStreamError(f"no stream of {which}")
    failing = [r[0] for r in rows if r[1]]
    if boot_id is None and len(failing) > 1:
        raise AmbiguousStreamError(
            f"{len(failing)} streams of {gateway_id} are failing; name the boot:"
            f" {', '.join(str(b) for b in failing)}"
        )
    if boot_id is None and len(rows) > 1 and not failing:
        raise NotFailingError(f"no stream of {gateway_id} is failing; nothing was set aside")
    return StreamKey(gateway_id, failing[0] if failing else rows[0][0])


async def _head_batch(
    conn: AsyncConnection[TupleRow], stream: StreamKey
) -> tuple[int, int, int, int] | None:
    cur = await conn.execute(
        "SELECT batch_id, first_seq, last_seq, record_count FROM ingest_batches"
        " WHERE gateway_id = %s AND boot_id = %s AND processed_at IS NULL"
        " ORDER BY first_seq LIMIT 1",
        (stream.gateway_id, stream.boot_id),
    )
    row = await cur.fetchone()
    return None if row is None else (int(row[0]), int(row[1]), int(row[2]), int(row[3]))


async def _record(
    conn: AsyncConnection[TupleRow], done: SetAside, *, reason: str, actor: str
) -> None:
    await conn.execute(
        "INSERT INTO quarantined_batches (batch_id, gateway_id, boot_id, first_seq, last_seq,"
        " record_count, received_at, time_min, time_max, failures, last_error, reason,"
        " set_aside_by)"
        " SELECT batch_id, gateway_id, boot_id, first_seq, last_seq, record_count, received_at,"
        " time_min, time_max, %s, %s, %s, %s FROM ingest_batches WHERE batch_id = %s",
        (done.failures, done.last_error, reason, actor, done.batch_id),
    )
    await conn.execute(
        "UPDATE ingest_batches SET processed_at = now() WHERE batch_id = %s", (done.batch_id,)
    )
    await conn.execute(
        "UPDATE processor_streams SET processed_through = %s, failures = 0, last_error = NULL,"
        " retry_at = NULL, failing_batch_id = NULL, failing_since = NULL, stalled_since = NULL,"
        " updated_at = now() WHERE gateway_id = %s AND boot_id = %s",
        (done.last_seq, done.gateway_id, done.boot_id),
    )
    await conn.execute(
        "INSERT INTO audit_log (actor, action, subject, reason, detail)"
        " VALUES (%s, 'set_aside_batch', %s, %s, %s)",
        (
            actor,
            f"batch:{done.batch_id}",
            reason,
            Jsonb({
                "gateway_id": done.gateway_id, "boot_id": str(done.boot_id),
                "first_seq": done.first_seq, "last_seq": done.last_seq,
                "record_count": done.record_count, "failures": done.failures,
                "last_error": done.last_error,
            }),
        ),
    )  # fmt: skip
    await raise_set_aside(
        conn,
        StreamKey(done.gateway_id, done.boot_id),
        done.batch_id,
        seqs=(done.first_seq, done.last_seq),
        actor=actor,
        reason=reason,
    )
    await conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, done.gateway_id))
