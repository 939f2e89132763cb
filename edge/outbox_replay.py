"""The outbox's replay window: acknowledged records kept so a restored cloud can be refilled.

A cloud database restored from a backup has forgotten what it stored after the backup, although
it acknowledged it. The gateway therefore keeps acknowledged records for ``replay_window``
(default 7 days) instead of deleting them at once: the rows stay in ``records`` below the
``acked_through`` mark in ``meta`` and are never sent again, unless the cloud's answer shows it
lost them (409 with an earlier ``expected_seq``): then :func:`reopen_sync` moves the mark back
and the uplink resends them, in order, under the same boot id and the same sequence numbers (the
cloud's high-water mark makes a resend of something it still has a no-op).

The window is bounded by disk: kept records count against the outbox's bounds but are evicted,
oldest first, whenever new records need the room, and all at once when the filesystem is full.
So they never push back on a source. When they were acknowledged is kept per ack, not per row
(``acks``: the highest sequence of each ack and its time; acks within a minute share one row),
so acknowledging costs one small row and no rewrite of the records.

These functions run on the outbox's worker thread, inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS acks (through_seq INTEGER PRIMARY KEY, acked_at REAL NOT NULL);
"""

ACK_MERGE_SECONDS = 60.0
"""Acks within this long of the newest ack row extend it instead of adding a row."""

EXPIRE_CHUNK = 20_000
"""Records deleted per expiry transaction (keeps each write short)."""


@dataclass(frozen=True)
class Retained:
    """The acknowledged records still kept for replay."""

    count: int
    bytes: int
    first_seq: int | None
    """The lowest kept sequence number (None when nothing is kept)."""
    since: float | None
    """When the oldest kept record was acknowledged (epoch seconds; None when nothing is kept)."""


@dataclass(frozen=True)
class Reopened:
    """What :func:`reopen_sync` made pending again."""

    first_seq: int
    """The first sequence number that will be sent again (``asked`` when nothing is missing)."""
    count: int
    acked_through: int
    """The new acknowledgement mark (``first_seq - 1``)."""


def initial_mark(db: sqlite3.Connection, last_seq: int) -> int:
    """``acked_through`` for a file from before the replay window: every row there is pending."""
    lowest = db.execute("SELECT min(seq) FROM records").fetchone()[0]
    return last_seq if lowest is None else int(lowest) - 1


def retained_sync(db: sqlite3.Connection, acked_through: int) -> Retained:
    count, size, first = db.execute(
        "SELECT count(*), coalesce(sum(size), 0), min(seq) FROM records WHERE seq <= ?",
        (acked_through,),
    ).fetchone()
    if not count:
        return Retained(0, 0, None, None)
    return Retained(int(count), int(size), int(first), _acked_at_sync(db, int(first)))


def grown_sync(
    db: sqlite3.Connection, before: Retained, count: int, size: int, first: int | None
) -> Retained:
    """``before`` plus ``count`` records (``size`` bytes, lowest ``first``) just acknowledged.

    Kept counts are carried along instead of recounted: a recount scans every kept row, and a
    drain of a large backlog acknowledges many times while the window fills.
    """
    if not count and not before.count:
        return before
    low = before.first_seq if before.first_seq is not None else first
    return Retained(before.count + count, before.bytes + size, low, _acked_at_sync(db, low))


def shrunk_sync(
    db: sqlite3.Connection, before: Retained, *, count: int, size: int, through: int, mark: int
) -> Retained:
    """``before`` less ``count`` kept records (``size`` bytes) deleted through ``through``."""
    if not count:
        return before
    left = before.count - count
    if left <= 0:
        return Retained(0, 0, None, None)
    low = db.execute(
        "SELECT min(seq) FROM records WHERE seq > ? AND seq <= ?", (through, mark)
    ).fetchone()[0]
    first = None if low is None else int(low)
    return Retained(left, before.bytes - size, first, _acked_at_sync(db, first))


def _acked_at_sync(db: sqlite3.Connection, first: int | None) -> float | None:
    if first is None:
        return None
    row = db.execute(
        "SELECT acked_at FROM acks WHERE through_seq >= ? ORDER BY through_seq LIMIT 1", (first,)
    ).fetchone()
    return None if row is None else float(row[0])


def record_ack_sync(db: sqlite3.Connection, through: int, now: float) -> None:
    """Moves the acknowledgement mark to ``through`` and notes when."""
    db.execute("UPDATE meta SET value = ? WHERE key = 'acked_through'", (str(through),))
    newest = db.execute(
        "SELECT through_seq, acked_at FROM acks ORDER BY through_seq DESC LIMIT 1"
    ).fetchone()
    if newest is not None and 0 <= now - float(newest[1]) < ACK_MERGE_SECONDS:
        db.execute(
            "UPDATE acks SET through_seq = ?, acked_at = ? WHERE through_seq = ?",
            (through, now, newest[0]),
        )
    else:
        db.execute("INSERT OR REPLACE INTO acks VALUES (?, ?)", (through, now))


def expire_sync(db: sqlite3.Connection, cutoff: float) -> tuple[int, int, int]:
    """Deletes (one chunk of) kept records acknowledged before ``cutoff``.

    Returns (records deleted, their bytes, the highest sequence deleted or 0).
    """
    through = 0
    for seq, acked_at in db.execute(
        "SELECT through_seq, acked_at FROM acks ORDER BY through_seq LIMIT 1000"
    ).fetchall():
        if float(acked_at) >= cutoff:
            break
        through = int(seq)
    if not through:
        return 0, 0, 0
    lowest = db.execute("SELECT min(seq) FROM records").fetchone()[0]
    if lowest is not None:
        through = min(through, int(lowest) + EXPIRE_CHUNK - 1)
    return _delete_through(db, through)


def evict_sync(
    db: sqlite3.Connection, acked_through: int, records: int, size: int
) -> tuple[int, int, int]:
    """Deletes the oldest kept records until ``records`` rows and ``size`` bytes are freed (or
    none is left). Returns (records deleted, their bytes, the highest sequence deleted or 0)."""
    freed_bytes, through = 0, 0
    cursor = db.execute(
        "SELECT seq, size FROM records WHERE seq <= ? ORDER BY seq", (acked_through,)
    )
    for freed_rows, (seq, row_size) in enumerate(cursor, start=1):
        through = int(seq)
        freed_bytes += int(row_size)
        if freed_rows >= records and freed_bytes >= size:
            break
    cursor.close()
    if not through:
        return 0, 0, 0
    return _delete_through(db, through)


def _delete_through(db: sqlite3.Connection, through: int) -> tuple[int, int, int]:
    count, size = db.execute(
        "SELECT count(*), coalesce(sum(size), 0) FROM records WHERE seq <= ?", (through,)
    ).fetchone()
    db.execute("DELETE FROM records WHERE seq <= ?", (through,))
    db.execute("DELETE FROM acks WHERE through_seq <= ?", (through,))
    return int(count), int(size), through


def forget_all_sync(db: sqlite3.Connection, acked_through: int) -> tuple[int, int]:
    """Deletes every kept record (a full disk, a rebase); returns (records, bytes)."""
    count, size, _ = _delete_through(db, acked_through) if acked_through > 0 else (0, 0, 0)
    db.execute("DELETE FROM acks")
    return count, size


def reopen_sync(db: sqlite3.Connection, asked: int, acked_through: int) -> Reopened:
    """Makes the kept records from ``asked`` on pending again (as far as they are kept).

    When the oldest kept record is above ``asked``, the records in between are gone for good:
    the result's ``first_seq`` says where sending restarts.
    """
    if asked > acked_through:
        return Reopened(asked, 0, acked_through)
    lowest = db.execute("SELECT min(seq) FROM records").fetchone()[0]
    first = acked_through + 1 if lowest is None else max(asked, min(int(lowest), acked_through + 1))
    count = int(
        db.execute(
            "SELECT count(*) FROM records WHERE seq >= ? AND seq <= ?", (first, acked_through)
        ).fetchone()[0]
    )
    mark = first - 1
    db.execute("UPDATE meta SET value = ? WHERE key = 'acked_through'", (str(mark),))
    db.execute("DELETE FROM acks WHERE through_seq > ?", (mark,))
    return Reopened(first, count, mark)
