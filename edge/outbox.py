"""The durable outbox: every record is committed to SQLite before its source is acknowledged.

One SQLite file in WAL mode with ``synchronous=FULL``: a commit returns only after the write-ahead
log is on stable storage, so a record whose ``append`` returned survives ``kill -9`` and power
loss. Records get gateway-wide sequence numbers without gaps, starting at 1 for each ``boot_id``
(a new UUID drawn when the file is created). They leave only when the cloud acknowledges them
(``ack``) and are never expired by age.

The outbox is bounded by records and bytes. Crossing ``high_water`` of either bound is reported
(with a time-to-full estimate from the recent fill rate); when full, the overflow policy decides:
``block`` (default) makes ``append`` wait until the uplink frees space, so the caller does not
resume its source and the device or broker is not acknowledged; ``raise`` raises
:class:`OutboxFullError` at once. Neither policy drops anything. A single append larger than the
whole outbox is accepted into an empty outbox, so no tuple can deadlock it.

A record the cloud refuses for good is *replaced in place* by a ``DeadLetter`` carrying the
original bytes and the cloud's reason (so the sequence stays contiguous and the cloud still sees
that something was lost here), and a copy is kept in the local ``dead_letters`` table.

A reading whose identity (sensor, device time, value, unit, quality) was committed within
``dedupe_window`` is not committed again: an MQTT broker redelivers what it had sent just before a
crash, and the outbox is where "at least once" from the broker becomes "once" on disk.

SQLite is blocking, so all of it runs on one dedicated worker thread owned by the outbox and
joined on ``close``.

Exception tree::

    OutboxError
    ├── OutboxFullError       policy ``raise`` and no room
    └── OutboxClosedError     used after ``close``
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Protocol, Self, TypeVar
from uuid import UUID, uuid4

from pydantic import TypeAdapter

from edge.clock import Clock, SystemClock
from protocols.records import DeadLetter, Reading, Record

T = TypeVar("T")
_Row = tuple[str, str, int, bytes | None]  # kind, JSON body, size, reading identity
_RECORD = TypeAdapter[Record](Record)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    size INTEGER NOT NULL,
    appended_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS seen_readings (
    key BLOB PRIMARY KEY,
    seen_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    boot_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    reason TEXT NOT NULL,
    payload TEXT NOT NULL,
    moved_at REAL NOT NULL,
    PRIMARY KEY (boot_id, seq)
);
"""


class OutboxError(RuntimeError):
    """The outbox could not do what was asked."""


class OutboxFullError(OutboxError):
    """No room for the records and the overflow policy is ``raise``."""


class OutboxClosedError(OutboxError):
    """The outbox was used after it was closed."""


class OverflowPolicy(StrEnum):
    """What ``append`` does when the outbox is full. Neither policy drops data."""

    BLOCK = "block"
    RAISE = "raise"


@dataclass(frozen=True)
class StoredRecord:
    seq: int
    payload: str
    """The record's canonical JSON, exactly as committed."""
    appended_at: datetime


@dataclass(frozen=True)
class Peeked:
    boot_id: UUID
    records: tuple[StoredRecord, ...]


@dataclass(frozen=True)
class DeadLettered:
    boot_id: UUID
    seq: int
    reason: str
    payload: str
    moved_at: datetime


@dataclass(frozen=True)
class OutboxStats:
    boot_id: UUID
    records: int
    bytes: int
    max_records: int
    max_bytes: int
    last_seq: int
    oldest_appended_at: datetime | None
    fill_ratio: float
    """The larger of records/max_records and bytes/max_bytes."""
    time_to_full: timedelta | None
    """At the fill rate of the recent window; None when not filling."""
    high_water: bool
    full: bool
    """At a bound, or an append is waiting for room (back-pressure is on)."""
    duplicates_dropped: int = 0
    """Redelivered readings not committed again since the outbox was opened."""


class Outbox(Protocol):
    """The port the agent, the uplink and the alarms use; see the module docstring."""

    async def append(self, records: Sequence[Record]) -> int:
        """Commit ``records`` durably and return the last sequence number given to them."""
        ...

    async def peek(self, max_records: int, max_bytes: int) -> Peeked:
        """The oldest records, at most ``max_records`` and ``max_bytes`` (but at least one)."""
        ...

    async def ack(self, boot_id: UUID, through_seq: int) -> int:
        """Delete records up to ``through_seq``; returns how many were deleted."""
        ...

    async def dead_letter(self, boot_id: UUID, seq: int, reason: str) -> None:
        """Replace record ``seq`` by a DeadLetter with ``reason``; keep the original locally."""
        ...

    async def dead_letters(self) -> list[DeadLettered]: ...

    async def wait_for_records(self) -> None:
        """Return once the outbox holds at least one record."""
        ...

    def stats(self) -> OutboxStats: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class OutboxLimits:
    max_records: int = 5_000_000
    max_bytes: int = 2 * 1024**3
    high_water: float = 0.8
    fill_rate_window: timedelta = timedelta(minutes=10)
    overflow: OverflowPolicy = OverflowPolicy.BLOCK
    dedupe_window: timedelta = timedelta(days=1)
    """How long a reading's identity is remembered to drop its redelivery (see ``reading_key``)."""


def reading_key(record: Record) -> bytes | None:
    """The identity of a measurement, or None for records that are never de-duplicated.

    A broker redelivers a message whose acknowledgement was lost in a crash; the same sensor,
    device time, value and quality is the same measurement, so it is committed once. Readings
    stamped with receipt time (devices that send no time) cannot be recognised this way.
    """
    if not isinstance(record, Reading):
        return None
    ident = f"{record.sensor_id}|{record.time.isoformat()}|{record.value!r}|{record.unit}"
    return hashlib.sha256(f"{ident}|{record.quality.value}".encode()).digest()


class _FillRate:
    """Recent (monotonic time, fill ratio) samples, one per second at most.

    Overflow policy of the sample buffer: the oldest sample is dropped (these are estimates,
    not data).
    """

    def __init__(self, window: timedelta) -> None:
        self._window = window.total_seconds()
        self._samples: deque[tuple[float, float]] = deque(maxlen=4096)

    def add(self, now: float, ratio: float) -> None:
        if self._samples and now - self._samples[-1][0] < 1.0:
            self._samples[-1] = (self._samples[-1][0], ratio)
        else:
            self._samples.append((now, ratio))
        while len(self._samples) > 2 and now - self._samples[0][0] > self._window:
            self._samples.popleft()

    def time_to_full(self, now: float, ratio: float) -> timedelta | None:
        if not self._samples:
            return None
        start, start_ratio = self._samples[0]
        elapsed = now - start
        if elapsed <= 0 or ratio <= start_ratio:
            return None
        rate = (ratio - start_ratio) / elapsed
        return timedelta(seconds=max(0.0, (1.0 - ratio) / rate))


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class SqliteOutbox:
    """The SQLite outbox. Open with ``await SqliteOutbox.open(path)`` or ``async with``."""

    def __init__(self, path: Path, limits: OutboxLimits, clock: Clock) -> None:
        self._path = path
        self._limits = limits
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._conn: sqlite3.Connection | None = None
        self._boot_id = UUID(int=0)
        self._count = 0
        self._bytes = 0
        self._last_seq = 0
        self._oldest: float | None = None
        self._closed = False
        self._closing = False
        self._blocked = False
        self._append_lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._fill = _FillRate(limits.fill_rate_window)
        self._duplicates = 0
        self._pruned_at = 0.0

    @classmethod
    async def open(
        cls, path: Path, limits: OutboxLimits | None = None, clock: Clock | None = None
    ) -> SqliteOutbox:
        outbox = cls(path, limits or OutboxLimits(), clock or SystemClock())
        try:
            await outbox._run(outbox._open_sync)
        except BaseException:
            outbox._executor.shutdown(wait=True)
            raise
        return outbox

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def boot_id(self) -> UUID:
        return self._boot_id

    @property
    def path(self) -> Path:
        return self._path

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise OutboxClosedError(f"outbox {self._path} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    # --- worker-thread side -------------------------------------------------------------------

    def _open_sync(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self._path, isolation_level=None)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OutboxError(f"{self._path}: WAL journal mode refused (got {mode})")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('boot_id', ?)", (str(uuid4()),))
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('last_seq', '0')")
            conn.execute("COMMIT")
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            totals = "SELECT count(*), coalesce(sum(size), 0) FROM records"
            count, size = conn.execute(totals).fetchone()
        except sqlite3.Error as err:
            raise OutboxError(f"cannot open outbox {self._path}: {err}") from err
        self._conn = conn
        self._boot_id = UUID(meta["boot_id"])
        self._last_seq = int(meta["last_seq"])
        self._count, self._bytes = int(count), int(size)
        self._oldest = self._oldest_sync()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise OutboxClosedError(f"outbox {self._path} is closed")
        return self._conn

    def _oldest_sync(self) -> float | None:
        row = self._db().execute("SELECT appended_at FROM records ORDER BY seq LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    def _append_sync(self, rows: list[_Row], now: float) -> int:
        db = self._db()
        first = self._last_seq + 1
        try:
            db.execute("BEGIN IMMEDIATE")
            rows = self._unseen_sync(db, rows, now)
            if not rows:
                db.execute("COMMIT")
                return self._last_seq
            db.executemany(
                "INSERT INTO records (seq, kind, payload, size, appended_at) VALUES (?,?,?,?,?)",
                [
                    (first + i, kind, body, size, now)
                    for i, (kind, body, size, _) in enumerate(rows)
                ],
            )
            last = first + len(rows) - 1
            db.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (str(last),))
            db.execute("COMMIT")
        except sqlite3.Error as err:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise OutboxError(f"append to {self._path} failed: {err}") from err
        self._last_seq = last
        self._count += len(rows)
        self._bytes += sum(row[2] for row in rows)
        if self._oldest is None:
            self._oldest = now
        return last

    def _unseen_sync(self, db: sqlite3.Connection, rows: list[_Row], now: float) -> list[_Row]:
        """Drops readings already committed within the dedupe window, in the append transaction."""
        kept = []
        for row in rows:
            key = row[3]
            if key is not None:
                db.execute("INSERT OR IGNORE INTO seen_readings VALUES (?, ?)", (key, now))
                if db.execute("SELECT changes()").fetchone()[0] == 0:
                    self._duplicates += 1
                    continue
            kept.append(row)
        if now - self._pruned_at > 60:
            horizon = now - self._limits.dedupe_window.total_seconds()
            db.execute("DELETE FROM seen_readings WHERE seen_at < ?", (horizon,))
            self._pruned_at = now
        return kept

    def _peek_sync(self, max_records: int, max_bytes: int) -> list[StoredRecord]:
        cursor = self._db().execute(
            "SELECT seq, payload, size, appended_at FROM records ORDER BY seq LIMIT ?",
            (max_records,),
        )
        out: list[StoredRecord] = []
        total = 0
        for seq, payload, size, appended_at in cursor:
            if out and total + size > max_bytes:
                break
            total += size
            out.append(StoredRecord(seq, payload, _ts(appended_at)))
        return out

    def _ack_sync(self, through_seq: int) -> int:
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
            count, size = db.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM records WHERE seq <= ?",
                (through_seq,),
            ).fetchone()
            db.execute("DELETE FROM records WHERE seq <= ?", (through_seq,))
            db.execute("COMMIT")
        except sqlite3.Error as err:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise OutboxError(f"ack in {self._path} failed: {err}") from err
        self._count -= int(count)
        self._bytes -= int(size)
        self._oldest = self._oldest_sync()
        return int(count)

    def _dead_letter_sync(self, seq: int, reason: str, now: float) -> None:
        db = self._db()
        row = db.execute("SELECT payload, size FROM records WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            raise OutboxError(f"record {seq} is not in the outbox (already acknowledged?)")
        payload, old_size = str(row[0]), int(row[1])
        letter = DeadLetter(
            source="edge-uplink",
            reason=f"refused by the cloud: {reason}"[:2000],
            raw=payload.encode(),
            received_at=_ts(now),
        )
        body = letter.model_dump_json()
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT OR REPLACE INTO dead_letters VALUES (?,?,?,?,?)",
                (str(self._boot_id), seq, reason, payload, now),
            )
            db.execute(
                "UPDATE records SET kind = ?, payload = ?, size = ? WHERE seq = ?",
                ("dead_letter", body, len(body.encode()), seq),
            )
            db.execute("COMMIT")
        except sqlite3.Error as err:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise OutboxError(f"dead-lettering {seq} in {self._path} failed: {err}") from err
        self._bytes += len(body.encode()) - old_size

    def _dead_letters_sync(self) -> list[DeadLettered]:
        rows = self._db().execute(
            "SELECT boot_id, seq, reason, payload, moved_at FROM dead_letters ORDER BY moved_at"
        )
        return [DeadLettered(UUID(b), s, r, p, _ts(m)) for b, s, r, p, m in rows]

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- event-loop side ----------------------------------------------------------------------

    def _fits(self, count: int, size: int) -> bool:
        if self._count == 0:
            return True
        return (
            self._count + count <= self._limits.max_records
            and self._bytes + size <= self._limits.max_bytes
        )

    async def append(self, records: Sequence[Record]) -> int:
        if not records:
            return self._last_seq
        rows: list[_Row] = []
        for record in records:
            body = record.model_dump_json()
            rows.append((record.kind, body, len(body.encode()), reading_key(record)))
        size = sum(r[2] for r in rows)
        async with self._append_lock:
            async with self._changed:
                while not self._fits(len(rows), size):
                    if self._closing:
                        raise OutboxClosedError(
                            f"outbox {self._path} closed while waiting for room"
                        )
                    if self._limits.overflow is OverflowPolicy.RAISE:
                        raise OutboxFullError(
                            f"outbox full ({self._count} records, {self._bytes} bytes)"
                        )
                    self._blocked = True
                    try:
                        await self._changed.wait()
                    finally:
                        self._blocked = False
            now = self._clock.now().timestamp()
            last: int = await self._run(self._append_sync, rows, now)
            await self._notify()
            return last

    async def peek(self, max_records: int, max_bytes: int) -> Peeked:
        if max_records < 1 or max_bytes < 1:
            raise ValueError("peek needs max_records >= 1 and max_bytes >= 1")
        rows: list[StoredRecord] = await self._run(self._peek_sync, max_records, max_bytes)
        return Peeked(self._boot_id, tuple(rows))

    async def ack(self, boot_id: UUID, through_seq: int) -> int:
        if boot_id != self._boot_id:
            raise OutboxError(f"ack for boot {boot_id}, but this outbox is boot {self._boot_id}")
        through = min(through_seq, self._last_seq)
        deleted: int = await self._run(self._ack_sync, through)
        if deleted:
            await self._notify()
        return deleted

    async def dead_letter(self, boot_id: UUID, seq: int, reason: str) -> None:
        if boot_id != self._boot_id:
            raise OutboxError(f"dead letter for boot {boot_id}, outbox is boot {self._boot_id}")
        await self._run(self._dead_letter_sync, seq, reason, self._clock.now().timestamp())

    async def dead_letters(self) -> list[DeadLettered]:
        rows: list[DeadLettered] = await self._run(self._dead_letters_sync)
        return rows

    async def wait_for_records(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._count > 0 or self._closed)

    async def _notify(self) -> None:
        self._fill.add(self._clock.monotonic(), self._ratio())
        async with self._changed:
            self._changed.notify_all()

    def _ratio(self) -> float:
        return max(self._count / self._limits.max_records, self._bytes / self._limits.max_bytes)

    def stats(self) -> OutboxStats:
        ratio = self._ratio()
        return OutboxStats(
            boot_id=self._boot_id,
            records=self._count,
            bytes=self._bytes,
            max_records=self._limits.max_records,
            max_bytes=self._limits.max_bytes,
            last_seq=self._last_seq,
            oldest_appended_at=None if self._oldest is None else _ts(self._oldest),
            fill_ratio=ratio,
            time_to_full=self._fill.time_to_full(self._clock.monotonic(), ratio),
            high_water=ratio >= self._limits.high_water,
            full=self._blocked
            or self._count >= self._limits.max_records
            or self._bytes >= self._limits.max_bytes,
            duplicates_dropped=self._duplicates,
        )

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        async with self._changed:
            self._changed.notify_all()  # appends waiting for room give up with OutboxClosedError
        async with self._append_lock:
            await self._run(self._close_sync)
            self._closed = True
        self._executor.shutdown(wait=True)
        async with self._changed:
            self._changed.notify_all()


def decode(payload: str) -> Record:
    """The record back from its stored JSON (for tools and tests; the uplink sends it as is)."""
    return _RECORD.validate_json(payload)


def decode_all(rows: Iterable[StoredRecord]) -> list[Record]:
    return [decode(row.payload) for row in rows]
