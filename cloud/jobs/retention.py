"""Retention: drop what is older than each table's configured age; never the ledger.

On hypertables whole chunks go (``drop_chunks``: cheap, no bloat; rows wait until their whole
chunk is past the cutoff). On plain tables rows are deleted in bounded batches, one transaction
each, so a large backlog never holds a long lock or a huge transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection, sql
from psycopg.rows import TupleRow

from cloud.jobs import RetentionRefusedError
from cloud.storage.capabilities import probe

log = logging.getLogger(__name__)

TIME_COLUMNS = {
    "readings": "time",
    "tag_reads": "time",
    "anomaly_scores": "time",
    "device_status": "time",
    "dead_letters": "received_at",
    "portal_passages": "started_at",
    "ingest_batches": "received_at",
}
"""The prunable tables and the time that ages them. Anything else is refused."""

_EXTRA_CONDITION = {
    # A batch's bookkeeping goes only once it is processed: the processor still needs it.
    "ingest_batches": sql.SQL(" AND processed_at IS NOT NULL"),
}


@dataclass(frozen=True)
class Pruned:
    table: str
    method: str
    removed: int
    """Rows deleted (DELETE) or chunks dropped (drop_chunks)."""


async def prune(
    conn: AsyncConnection[TupleRow],
    table: str,
    older_than: timedelta,
    now: datetime,
    *,
    batch_rows: int = 10_000,
) -> Pruned:
    """Removes ``table``'s rows older than ``now - older_than``; commits as it goes."""
    if table not in TIME_COLUMNS:
        raise RetentionRefusedError(f"retention is not allowed on {table!r}")
    cutoff = now - older_than
    if await _is_hypertable(conn, table):
        # through the owner's SECURITY DEFINER function (migration 0060): only a hypertable's
        # owner may drop its chunks, and the service does not own the tables
        cur = await conn.execute("SELECT coldtrace_drop_chunks(%s::regclass, %s)", (table, cutoff))
        row = await cur.fetchone()
        await conn.commit()
        return Pruned(table, "drop_chunks", int(row[0]) if row else 0)
    removed = 0
    statement = sql.SQL(
        "DELETE FROM {t} WHERE ctid = ANY(ARRAY("
        "SELECT ctid FROM {t} WHERE {c} < %s{extra} LIMIT %s))"
    ).format(
        t=sql.Identifier(table),
        c=sql.Identifier(TIME_COLUMNS[table]),
        extra=_EXTRA_CONDITION.get(table, sql.SQL("")),
    )
    while True:
        cur = await conn.execute(statement, (cutoff, batch_rows))
        await conn.commit()
        removed += cur.rowcount
        if cur.rowcount < batch_rows:
            return Pruned(table, "delete", removed)


async def prune_all(
    conn: AsyncConnection[TupleRow],
    rules: dict[str, timedelta],
    now: datetime,
    *,
    batch_rows: int = 10_000,
) -> list[Pruned]:
    done = []
    for table, age in sorted(rules.items()):
        result = await prune(conn, table, age, now, batch_rows=batch_rows)
        log.info("retention: %s %s removed %d", table, result.method, result.removed)
        done.append(result)
    return done


async def _is_hypertable(conn: AsyncConnection[TupleRow], table: str) -> bool:
    if not (await probe(conn)).hypertables:
        return False
    cur = await conn.execute(
        "SELECT 1 FROM timescaledb_information.hypertables"
        " WHERE hypertable_schema = current_schema() AND hypertable_name = %s",
        (table,),
    )
    return await cur.fetchone() is not None
