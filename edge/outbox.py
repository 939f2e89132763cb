"""The durable outbox: every record is committed to SQLite before its source is acknowledged.

One SQLite file in WAL mode with ``synchronous=FULL``: a commit returns only after the write-ahead
log is on stable storage, so a record whose ``append`` returned survives ``kill -9`` and power
loss. Records get gateway-wide sequence numbers without gaps, starting at 1 for each ``boot_id``
(a new UUID drawn when the file is created). They leave only when the cloud acknowledges them
(``ack``) and are never expired by age.

The outbox is bounded by records and by bytes *on disk*: the pages in use in the file (records,
de-duplication keys, dead letters, their B-trees) plus the write-ahead log, against ``max_bytes``
less ``headroom`` (kept free for the acknowledgements and checkpoints that empty it). Crossing
``high_water`` of either bound is reported (with a time-to-full estimate from the recent fill
rate); when full, the overflow policy decides:
``block`` (default) makes ``append`` wait until the uplink frees space, so the caller does not
resume its source and the device or broker is not acknowledged; ``raise`` raises
:class:`OutboxFullError` at once. Neither policy drops anything. A single append larger than the
whole outbox is accepted into an empty outbox, so no tuple can deadlock it.

A full filesystem (SQLITE_FULL, ENOSPC) is back-pressure too, not a crash: the append is rolled
back, reported (``OutboxStats.disk_full``), and tried again after the next acknowledgement or
``disk_retry``. Writes that free space (acknowledgements, opening) may use a reserve file kept
beside the outbox (``edge.outbox_storage``), so a full disk can always be emptied by the cloud.
A file SQLite reads as damaged is moved aside by :func:`open_outbox`, which then starts a fresh
file (a new ``boot_id``); the caller raises the alarm. A runtime "malformed" error marks the
file so the next start moves it aside instead of crash-looping on it.

:meth:`SqliteOutbox.rebase` renumbers the records under a new ``boot_id``: the uplink calls it
when the cloud has stored more of this boot than the file ever numbered (the file was rolled
back: restored from a backup, or a filesystem lost its last writes), because records numbered
again below the cloud's mark would be acknowledged without being stored.

Acknowledged records are kept for ``replay_window`` (default 7 days), bounded by disk: a cloud
restored from a backup is refilled from them (``replay``, ``edge.outbox_replay``). They are
never sent again otherwise, count in ``OutboxStats.retained*`` and not in ``records``, and are
evicted, oldest first, whenever new records need their room: they never push back on a source.

A record the cloud refuses for good is *replaced in place* by a ``DeadLetter`` carrying the
original bytes and the cloud's reason (so the sequence stays contiguous and the cloud still sees
that something was lost here), and a copy is kept in the local ``dead_letters`` table.

A reading whose identity (sensor, device time, value, unit, quality) was committed within
``dedupe_window`` is not committed again: an MQTT broker redelivers what it had sent just before a
crash, and the outbox is where "at least once" from the broker becomes "once" on disk. Keys
(device time first, then a hash: see ``reading_key``) are kept in generations of half a window
(``seen_keys``, primary key (generation, key)): a lookup probes the three newest generations,
and the prune deletes whole old generations at the front of the B-tree, in chunks, each in its
own short transaction outside the appends (no secondary index, no scan). A key is remembered
between one and one and a half windows of the agent's running time: generations are counted on
the monotonic clock and stored in ``meta`` with the keys, so a wall clock step neither forgets
keys nor files them under a future generation. ``last_seq`` is written by acknowledgements only (an
append derives it from the rows), so an append dirties the records' right edge, the keys'
right edge and little else: measured write amplification about 7x (WAL and checkpoint each
write a page once) against 40x for the previous layout (``bench/edge_outage.py``).

SQLite is blocking, so all of it runs on one dedicated worker thread owned by the outbox and
joined on ``close``.

Exception tree::

    OutboxError
    ├── OutboxFullError       policy ``raise`` and no room (bounds or a full filesystem)
    ├── OutboxCorruptError    SQLite reads the file as damaged
    └── OutboxClosedError     used after ``close``
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
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

from edge import outbox_replay as replay
from edge.clock import Clock, SystemClock
from edge.outbox_replay import Reopened, Retained
from edge.outbox_storage import (
    Reserve,
    free_bytes,
    is_corrupt,
    is_disk_full,
    move_aside,
    wal_bytes,
)
from protocols.records import DeadLetter, Reading, Record

log = logging.getLogger(__name__)

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
CREATE TABLE IF NOT EXISTS seen_keys (
    gen INTEGER NOT NULL,
    key BLOB NOT NULL,
    PRIMARY KEY (gen, key)
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


class OutboxCorruptError(OutboxError):
    """SQLite reads the outbox file as damaged (not a database, malformed, failed check)."""


class _DiskFullError(Exception):
    """An append hit a full filesystem and was rolled back (internal: becomes back-pressure)."""


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
    """At a bound, or an append is waiting for room or was refused for lack of it since the
    last acknowledgement (back-pressure is on)."""
    duplicates_dropped: int = 0
    """Redelivered readings not committed again since the outbox was opened."""
    disk_bytes: int = 0
    """On disk: pages in use in the file (records, de-dup keys, dead letters) plus the WAL."""
    disk_full: bool = False
    """The last write hit a full filesystem (back-pressure until a write succeeds)."""
    disk_error: str | None = None
    retained: int = 0
    """Acknowledged records kept for replay (not counted in ``records``)."""
    retained_bytes: int = 0
    retained_from_seq: int | None = None
    """The lowest sequence number that can still be replayed (None: nothing kept)."""
    replay_since: datetime | None = None
    """When the oldest kept record was acknowledged: a restore to a point after this loses
    nothing this gateway sent."""
    replay_window: timedelta = timedelta(0)
    """The configured window (the kept span is shorter when disk ran short or on a young file)."""


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

    async def rebase(self) -> UUID:
        """Renumber the records from 1 under a new boot id; returns the new boot id."""
        ...

    async def replay(self, boot_id: UUID, from_seq: int) -> Reopened:
        """Make kept acknowledged records from ``from_seq`` on pending again (a restored cloud
        lost them); ``first_seq`` of the result is where sending restarts."""
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
    headroom: float = 0.05
    """Share of ``max_bytes`` kept free for the writes that empty the outbox."""
    reserve_bytes: int = 32 * 1024**2
    """Size of the reserve file released when a space-freeing write finds the disk full."""
    disk_retry: timedelta = timedelta(seconds=5)
    """After a full filesystem, how long an append waits before trying again (if no ack)."""
    replay_window: timedelta = timedelta(days=7)
    """How long acknowledged records are kept for a restored cloud (0: deleted at once)."""


def reading_key(record: Record) -> bytes | None:
    """The identity of a measurement, or None for records that are never de-duplicated.

    A broker redelivers a message whose acknowledgement was lost in a crash; the same sensor,
    device time, value and quality is the same measurement, so it is committed once. Readings
    stamped with receipt time (devices that send no time) cannot be recognised this way.

    The key starts with the device time (8 bytes, big-endian microseconds) and ends with 16
    bytes of a hash of the identity: keys of one commit sort next to each other, so an append
    dirties a few B-tree pages at the right edge instead of one random page per reading (a
    hash-only key made 50 readings a second write about 24 GB a day; ``bench/edge_outage.py``).

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> key = reading_key(Reading(sensor_id="f/t", time=t, value=4.0, received_at=t))
    >>> len(key), key[:8] == int(t.timestamp() * 1e6).to_bytes(8, "big", signed=True)
    (24, True)
    """
    if not isinstance(record, Reading):
        return None
    ident = f"{record.sensor_id}|{record.time.isoformat()}|{record.value!r}|{record.unit}"
    digest = hashlib.sha256(f"{ident}|{record.quality.value}".encode()).digest()[:16]
    micros = int(record.time.timestamp() * 1_000_000)
    return micros.to_bytes(8, "big", signed=True) + digest


def filling_soon(
    ratio: float, time_to_full: timedelta | None, within: timedelta, min_ratio: float
) -> bool:
    """Whether an outbox below high water is filling fast enough to alarm: full within
    ``within`` at the recent rate, holding at least ``min_ratio`` (``within`` 0: never).

    >>> hour = timedelta(hours=1)
    >>> filling_soon(0.10, 2 * hour, 6 * hour, 0.05), filling_soon(0.10, 9 * hour, 6 * hour, 0.05)
    (True, False)
    >>> filling_soon(0.01, hour, 6 * hour, 0.05), filling_soon(0.5, None, 6 * hour, 0.05)
    (False, False)
    """
    if time_to_full is None or within <= timedelta(0):
        return False
    return ratio >= min_ratio and time_to_full < within


class _FillRate:
    """Recent (monotonic time, fill ratio) samples, one per second at most.

    Overflow policy of the sample buffer: the oldest sample is dropped (these are estimates,
    not data).
    """

    def __init__(self, window: timedelta) -> None:
        self._window = window.total_seconds()
        self._samples: deque[tuple[float, float]] = deque(maxlen=4096)

    def add(self, now: float, ratio: float) -> None:
        """Keeps the samples at least a second apart, except the newest, which moves forward.

        The oldest sample is the starting point of the rate and is never overwritten: a burst
        within one second used to leave a single sample, so no rate and no filling alarm.

        >>> rate = _FillRate(timedelta(minutes=10))
        >>> rate.add(0.0, 0.0); rate.add(0.4, 0.02); rate.add(0.8, 0.04)
        >>> rate.time_to_full(0.8, 0.04)
        datetime.timedelta(seconds=19, microseconds=200000)
        """
        if len(self._samples) >= 2 and now - self._samples[-2][0] < 1.0:
            self._samples[-1] = (now, ratio)
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


_PRUNE_CHUNK = 20_000
_JOURNAL_SIZE_LIMIT = 4 * 1024**2


class SqliteOutbox:
    """The SQLite outbox. Open with ``await SqliteOutbox.open(path)`` or ``async with``."""

    def __init__(self, path: Path, limits: OutboxLimits, clock: Clock) -> None:
        self._path = path
        self._limits = limits
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._conn: sqlite3.Connection | None = None
        self._reserve = Reserve(path.with_name(path.name + ".reserve"), limits.reserve_bytes)
        self._boot_id = UUID(int=0)
        self._count = 0
        self._bytes = 0
        self._disk = 0
        self._last_seq = 0
        self._acked_through = 0
        self._retained = Retained(0, 0, None, None)
        self._expired_at = 0.0
        self._oldest: float | None = None
        self._closed = False
        self._closing = False
        self._blocked = False
        self._refused = False
        self._refused_for_disk = False
        self._reserve_released = False
        """The reserve was spent on a space-freeing write and is not back yet."""
        self._disk_error: str | None = None
        self._disk_retry_at = 0.0
        self._append_lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._fill = _FillRate(limits.fill_rate_window)
        self._duplicates = 0
        self._pruned_gen: int | None = None
        self._gen = 0
        """The newest de-dup generation, counted on the monotonic clock (``meta.dedupe_gen``)."""
        self._gen_saved = 0
        self._gen_mono = 0.0
        """Monotonic time at which ``_gen`` began."""

    @classmethod
    async def open(
        cls, path: Path, limits: OutboxLimits | None = None, clock: Clock | None = None
    ) -> SqliteOutbox:
        outbox = cls(path, limits or OutboxLimits(), clock or SystemClock())
        try:
            await outbox._run(outbox._open_sync)
        except BaseException:
            await asyncio.get_running_loop().run_in_executor(outbox._executor, outbox._close_sync)
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

    @property
    def damage_marker(self) -> Path:
        """Exists when a runtime error showed the file damaged: the next open moves it aside."""
        return self._path.with_name(self._path.name + ".damaged")

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise OutboxClosedError(f"outbox {self._path} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    # --- worker-thread side -------------------------------------------------------------------

    def _open_sync(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if self.damage_marker.exists():
            raise OutboxCorruptError(f"{self._path} was marked damaged by a previous run")
        # A clean close checkpoints and deletes the WAL; one left behind means the last run was
        # killed or lost power: then a quick check reads the file once (about 10 s per GiB at
        # 100 MB/s) before anything is trusted.
        unclean = wal_bytes(self._path) > 0
        try:
            self._connect_sync(check=unclean)
        except sqlite3.Error as err:
            self._close_sync()
            if is_disk_full(err) and self._release_reserve():
                try:
                    self._connect_sync(check=unclean)
                except sqlite3.Error as again:
                    self._close_sync()
                    raise self._error("cannot open outbox", again) from again
            else:
                raise self._error("cannot open outbox", err) from err
        self._reserve.ensure()

    def _connect_sync(self, *, check: bool) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None)
        self._conn = conn
        # New files give freed pages back to the filesystem on request (incremental_vacuum):
        # after a full disk, what the cloud acknowledged must become free space again. It only
        # takes on a file without pages yet, so before anything else.
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise OutboxError(f"{self._path}: WAL journal mode refused (got {mode})")
        conn.execute("PRAGMA synchronous=FULL")
        # The WAL counts against max_bytes: keep it to about a sixteenth of the bound, and to
        # half the reserve, so that on a full disk the released reserve always holds what a
        # checkpoint must add to the file (otherwise the WAL could never be emptied again).
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
        limit = self._limits.max_bytes // 16
        if self._limits.reserve_bytes > 0:
            limit = min(limit, self._limits.reserve_bytes // 2)
        pages = max(16, min(1000, limit // page))
        conn.execute(f"PRAGMA wal_autocheckpoint={pages}")
        conn.execute(f"PRAGMA journal_size_limit={min(_JOURNAL_SIZE_LIMIT, pages * page)}")
        if check:
            verdict = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if verdict != "ok":
                raise OutboxCorruptError(f"{self._path} failed its quick check: {verdict}")
        conn.executescript(_SCHEMA + replay.SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('boot_id', ?)", (str(uuid4()),))
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('last_seq', '0')")
        self._migrate_seen_sync(conn)
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        top = int(conn.execute("SELECT coalesce(max(seq), 0) FROM records").fetchone()[0])
        # last_seq is written by acks only (one page less per append); the rows hold the rest.
        self._last_seq = max(int(meta["last_seq"]), top)
        if "dedupe_gen" not in meta:  # a file whose generations came from the wall clock
            newest = conn.execute("SELECT max(gen) FROM seen_keys").fetchone()[0]
            meta["dedupe_gen"] = str(0 if newest is None else int(newest))
            conn.execute("INSERT INTO meta VALUES ('dedupe_gen', ?)", (meta["dedupe_gen"],))
        if "acked_through" not in meta:  # a file from before the replay window
            mark = replay.initial_mark(conn, self._last_seq)
            conn.execute("INSERT INTO meta VALUES ('acked_through', ?)", (str(mark),))
            meta["acked_through"] = str(mark)
        conn.execute("COMMIT")
        self._boot_id = UUID(meta["boot_id"])
        self._acked_through = int(meta["acked_through"])
        self._gen = self._gen_saved = int(meta["dedupe_gen"])
        self._gen_mono = self._clock.monotonic()
        count, size = conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM records WHERE seq > ?",
            (self._acked_through,),
        ).fetchone()
        self._count, self._bytes = int(count), int(size)
        self._retained = replay.retained_sync(conn, self._acked_through)
        self._oldest = self._oldest_sync()
        self._disk = self._disk_sync()

    def _migrate_seen_sync(self, conn: sqlite3.Connection) -> None:
        """Drops the earlier key table (``seen_readings``: hash-only keys, another format): a
        redelivery within the first window after the upgrade may be committed twice."""
        conn.execute("DROP TABLE IF EXISTS seen_readings")

    def _error(self, what: str, err: sqlite3.Error) -> OutboxError:
        if isinstance(err, OutboxError):
            return err
        if is_corrupt(err):
            self._mark_damaged()
            return OutboxCorruptError(f"{what} {self._path}: {err}")
        return OutboxError(f"{what} {self._path}: {err}")

    def _mark_damaged(self) -> None:
        try:
            self.damage_marker.write_text("SQLite reported this outbox file damaged\n")
        except OSError as err:
            log.warning("cannot mark %s damaged: %s", self._path, err)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise OutboxClosedError(f"outbox {self._path} is closed")
        return self._conn

    def _disk_sync(self) -> int:
        db = self._db()
        pages = int(db.execute("PRAGMA page_count").fetchone()[0])
        free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
        size = int(db.execute("PRAGMA page_size").fetchone()[0])
        return (pages - free) * size + wal_bytes(self._path)

    def _oldest_sync(self) -> float | None:
        row = (
            self._db()
            .execute(
                "SELECT appended_at FROM records WHERE seq > ? ORDER BY seq LIMIT 1",
                (self._acked_through,),
            )
            .fetchone()
        )
        return None if row is None else float(row[0])

    def _gen_seconds(self) -> float:
        return max(1.0, self._limits.dedupe_window.total_seconds() / 2)

    def _dedupe_gen(self) -> int:
        """The current de-dup generation: a wall clock step neither forgets keys nor pins them
        to a future generation, and time the agent was stopped does not count (a key is then
        remembered longer, never shorter)."""
        steps = int((self._clock.monotonic() - self._gen_mono) // self._gen_seconds())
        if steps > 0:
            self._gen += steps
            self._gen_mono += steps * self._gen_seconds()
        return self._gen

    def _append_sync(self, rows: list[_Row], now: float, gen: int) -> tuple[int, int]:
        """Commits the rows not seen before; returns (last seq, duplicates dropped)."""
        db = self._db()
        first = self._last_seq + 1
        try:
            db.execute("BEGIN IMMEDIATE")
            rows, duplicates = self._unseen_sync(db, rows, gen)
            if gen != self._gen_saved:  # with the keys it numbers, so a restart goes on from it
                db.execute("UPDATE meta SET value = ? WHERE key = 'dedupe_gen'", (str(gen),))
            if rows:
                db.executemany(
                    "INSERT INTO records (seq, kind, payload, size, appended_at) "
                    "VALUES (?,?,?,?,?)",
                    [
                        (first + i, kind, body, size, now)
                        for i, (kind, body, size, _) in enumerate(rows)
                    ],
                )
            db.execute("COMMIT")
            self._gen_saved = gen
        except sqlite3.Error as err:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if is_disk_full(err):
                self._disk_error = str(err)
                self._checkpoint_sync(release=False)  # an emptied outbox frees its WAL
                raise _DiskFullError(str(err)) from err
            raise self._error("append to", err) from err
        self._disk_error = None
        if rows:
            self._last_seq = first + len(rows) - 1
            self._count += len(rows)
            self._bytes += sum(row[2] for row in rows)
            if self._oldest is None:
                self._oldest = now
        self._disk = self._disk_sync()
        return self._last_seq, duplicates

    def _unseen_sync(
        self, db: sqlite3.Connection, rows: list[_Row], gen: int
    ) -> tuple[list[_Row], int]:
        """Drops readings whose key is in one of the three newest generations."""
        kept, duplicates = [], 0
        for row in rows:
            key = row[3]
            if key is not None:
                seen = db.execute(
                    "SELECT 1 FROM seen_keys WHERE gen IN (?, ?, ?) AND key = ?",
                    (gen, gen - 1, gen - 2, key),
                ).fetchone()
                if seen is not None:
                    duplicates += 1
                    continue
                db.execute("INSERT OR IGNORE INTO seen_keys VALUES (?, ?)", (gen, key))
            kept.append(row)
        return kept, duplicates

    def _prune_sync(self, below_gen: int) -> int:
        """Deletes one chunk of keys of generations below ``below_gen``, in its own transaction."""
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "DELETE FROM seen_keys WHERE (gen, key) IN "
                "(SELECT gen, key FROM seen_keys WHERE gen < ? LIMIT ?)",
                (below_gen, _PRUNE_CHUNK),
            )
            deleted = int(db.execute("SELECT changes()").fetchone()[0])
            db.execute("COMMIT")
        except sqlite3.Error as err:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if is_disk_full(err):
                return 0  # pruning waits for space like everything else
            raise self._error("pruning de-dup keys in", err) from err
        self._disk = self._disk_sync()
        return deleted

    def _peek_sync(self, max_records: int, max_bytes: int) -> list[StoredRecord]:
        try:
            cursor = self._db().execute(
                "SELECT seq, payload, size, appended_at FROM records WHERE seq > ?"
                " ORDER BY seq LIMIT ?",
                (self._acked_through, max_records),
            )
            out: list[StoredRecord] = []
            total = 0
            for seq, payload, size, appended_at in cursor:
                if out and total + size > max_bytes:
                    break
                total += size
                out.append(StoredRecord(seq, payload, _ts(appended_at)))
        except sqlite3.Error as err:
            raise self._error("peek in", err) from err
        return out

    def _write_freeing_sync(self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Runs ``fn`` in a transaction; on a full disk releases the reserve and tries once more."""
        db = self._db()
        for attempt in (1, 2):
            try:
                db.execute("BEGIN IMMEDIATE")
                result = fn(db)
                db.execute("COMMIT")
            except sqlite3.Error as err:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if attempt == 1 and is_disk_full(err) and self._release_reserve():
                    continue
                if is_disk_full(err):
                    self._disk_error = str(err)
                    raise OutboxFullError(f"{what} {self._path}: {err}") from err
                raise self._error(what, err) from err
            return result
        raise AssertionError("unreachable")

    def _ack_sync(self, through_seq: int, now: float) -> int:
        # With no window, or on a full disk, what is acknowledged goes at once (with everything
        # kept before it): the room is worth more than the replay.
        keep = self._limits.replay_window > timedelta(0) and not (
            self._disk_error is not None or self._reserve_released
        )

        def mark(db: sqlite3.Connection) -> tuple[int, int, int | None]:
            if through_seq <= self._acked_through:
                return 0, 0, None
            count, size, first = db.execute(
                "SELECT count(*), coalesce(sum(size), 0), min(seq) FROM records"
                " WHERE seq > ? AND seq <= ?",
                (self._acked_through, through_seq),
            ).fetchone()
            db.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (str(self._last_seq),))
            replay.record_ack_sync(db, through_seq, now)
            if not keep:
                replay.forget_all_sync(db, through_seq)
            return int(count), int(size), None if first is None else int(first)

        try:
            count, size, first = self._write_freeing_sync("ack in", mark)
        except OutboxFullError:
            # The filesystem is full: kept records go first, then the ack is tried again.
            if not self._retained.count or not self._evict_sync(self._retained.count, 0):
                raise
            keep = False
            count, size, first = self._write_freeing_sync("ack in", mark)
        self._acked_through = max(self._acked_through, through_seq)
        self._count -= count
        self._bytes -= size
        self._retained = (
            replay.grown_sync(self._db(), self._retained, count, size, first)
            if keep
            else Retained(0, 0, None, None)
        )
        self._oldest = self._oldest_sync()
        if count:
            self._disk_retry_at = 0.0  # room was made: a waiting append tries again now
            if self._disk_error is not None or self._reserve_released:
                self._reclaim_sync()
            elif self._disk > self._usable_bytes():
                self._checkpoint_sync(release=False)
        self._disk = self._disk_sync()
        if keep and self._retained.count:
            self._keep_filesystem_room()
        return count

    def _keep_filesystem_room(self) -> None:
        """Kept records leave the filesystem twice the reserve free: the outbox's own bounds
        may be larger than the disk it is on, and pending records must always find room."""
        want = 2 * self._limits.reserve_bytes
        free = free_bytes(self._path.parent)
        if free is None or free >= want:
            return
        # Each kept byte is about two on disk (row, B-tree slack): evict half of what is missing.
        if self._evict_sync(0, (want - free) // 2 + 1):
            self._reclaim_sync()
            self._disk = self._disk_sync()

    def _release_reserve(self) -> bool:
        if self._reserve.release():
            self._reserve_released = True
            return True
        return False

    def _reclaim_sync(self) -> None:
        """After a full disk: give freed pages and the WAL back to the filesystem, then take
        the reserve again. Appends wait until the reserve is back (it is what lets the next
        acknowledgement through)."""
        try:
            # executescript steps it to the end (execute() frees one page per step only)
            self._db().executescript("PRAGMA incremental_vacuum;")
        except sqlite3.Error as err:
            log.warning("outbox incremental vacuum failed: %s", err)
        self._checkpoint_sync(release=True)
        if self._reserve_released and self._reserve.ensure():
            self._reserve_released = False

    def _checkpoint_sync(self, *, release: bool) -> None:
        """Moves the WAL into the file and truncates it (frees disk after a full filesystem);
        the file may have to grow for it, so a space-freeing caller may release the reserve."""
        for attempt in (1, 2):
            try:
                busy, _, _ = self._db().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.Error as err:
                if release and attempt == 1 and is_disk_full(err) and self._release_reserve():
                    continue
                log.debug("outbox checkpoint failed: %s", err)  # retried; the alarm is raised
                return
            if busy and release and attempt == 1 and self._release_reserve():
                continue  # SQLite reports a checkpoint it could not complete as busy
            return

    def _retake_reserve_sync(self) -> bool:
        """Tries to take the reserve again (space freed by someone else); True when held."""
        if self._reserve_released:
            self._checkpoint_sync(release=False)
            if self._reserve.ensure():
                self._reserve_released = False
        return not self._reserve_released

    def _reopen_sync(self, from_seq: int) -> Reopened:
        def reopen(db: sqlite3.Connection) -> Reopened:
            return replay.reopen_sync(db, from_seq, self._acked_through)

        result = self._write_freeing_sync("replaying in", reopen)
        self._acked_through = result.acked_through
        count, size = (
            self._db()
            .execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM records WHERE seq > ?",
                (self._acked_through,),
            )
            .fetchone()
        )
        self._count, self._bytes = int(count), int(size)
        self._retained = replay.retained_sync(self._db(), self._acked_through)
        self._oldest = self._oldest_sync()
        return result

    def _forget_sync(
        self, what: str, fn: Callable[[sqlite3.Connection], tuple[int, int, int]]
    ) -> int:
        """Deletes kept records through ``fn`` (expiry or eviction); returns how many."""
        try:
            deleted, size, through = self._write_freeing_sync(what, fn)
        except OutboxFullError:
            return 0  # waits for space like everything else
        self._retained = replay.shrunk_sync(
            self._db(),
            self._retained,
            count=deleted,
            size=size,
            through=through,
            mark=self._acked_through,
        )
        if deleted and (self._disk_error is not None or self._reserve_released):
            self._reclaim_sync()  # freed pages back to the filesystem, the reserve retaken
        self._disk = self._disk_sync()
        return deleted

    def _expire_sync(self, cutoff: float) -> int:
        return self._forget_sync(
            "expiring kept records in", lambda db: replay.expire_sync(db, cutoff)
        )

    def _evict_sync(self, records: int, size: int) -> int:
        mark = self._acked_through
        return self._forget_sync(
            "evicting kept records in", lambda db: replay.evict_sync(db, mark, records, size)
        )

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

        def replace(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO dead_letters VALUES (?,?,?,?,?)",
                (str(self._boot_id), seq, reason, payload, now),
            )
            db.execute(
                "UPDATE records SET kind = ?, payload = ?, size = ? WHERE seq = ?",
                ("dead_letter", body, len(body.encode()), seq),
            )

        self._write_freeing_sync(f"dead-lettering {seq} in", replace)
        self._bytes += len(body.encode()) - old_size
        self._disk = self._disk_sync()

    def _rebase_sync(self) -> UUID:
        new = uuid4()

        def renumber(db: sqlite3.Connection) -> int:
            # Kept records belong to the old numbering: the new boot cannot replay them.
            replay.forget_all_sync(db, self._acked_through)
            db.execute("UPDATE meta SET value = '0' WHERE key = 'acked_through'")
            first = db.execute("SELECT coalesce(min(seq), 1) FROM records").fetchone()[0]
            # Two steps, so no intermediate number collides with a row not yet moved.
            db.execute("UPDATE records SET seq = -seq")
            db.execute("UPDATE records SET seq = -seq - ?", (int(first) - 1,))
            count = int(db.execute("SELECT count(*) FROM records").fetchone()[0])
            db.execute("UPDATE meta SET value = ? WHERE key = 'boot_id'", (str(new),))
            db.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (str(count),))
            return count

        self._last_seq = self._write_freeing_sync("rebasing", renumber)
        self._acked_through = 0
        self._retained = Retained(0, 0, None, None)
        self._boot_id = new
        self._disk = self._disk_sync()
        return new

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

    def _usable_bytes(self) -> int:
        return max(1, int(self._limits.max_bytes * (1 - self._limits.headroom)))

    def _fits(self, count: int, size: int) -> bool:
        if self._disk_error is not None and self._clock.monotonic() < self._disk_retry_at:
            return False
        if self._count == 0 and self._retained.count == 0:
            return True
        # A new row costs about twice its JSON on disk (row, de-dup key, B-tree slack).
        return (
            self._count + self._retained.count + count <= self._limits.max_records
            and self._disk + 2 * size <= self._usable_bytes()
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
            while True:
                await self._wait_for_room(len(rows), size)
                # The next acknowledgement needs the reserve: no append until it is back.
                if self._reserve_released and not await self._run(self._retake_reserve_sync):
                    self._note_disk_full("the reserve for acknowledgements cannot be retaken")
                    continue
                now = self._clock.now().timestamp()
                gen = self._dedupe_gen()
                try:
                    last, duplicates = await self._run(self._append_sync, rows, now, gen)
                except _DiskFullError as err:
                    self._note_disk_full(str(err))
                    continue
                break
            self._duplicates += duplicates
            await self._notify()
            await self._maybe_prune(gen)
            return last

    def _still_refused(self) -> bool:
        if self._refused and self._refused_for_disk:
            return self._clock.monotonic() < self._disk_retry_at
        return self._refused

    def _note_disk_full(self, why: str) -> None:
        log.warning("outbox: filesystem full, append waits for room: %s", why)
        self._disk_error = self._disk_error or why
        self._disk_retry_at = self._clock.monotonic() + self._limits.disk_retry.total_seconds()

    async def _wait_for_room(self, count: int, size: int) -> None:
        async with self._changed:
            while not self._fits(count, size):
                if self._retained.count:
                    # Kept records give way to new ones: a third more than asked, so a
                    # steady stream does not evict on every append; all of them when the
                    # filesystem itself is full.
                    more = max(0, self._disk + 2 * size - self._usable_bytes())
                    rows = self._count + self._retained.count + count - self._limits.max_records
                    if self._disk_error is not None:
                        rows = self._retained.count
                    if await self._run(self._evict_sync, max(rows, count), (more * 4) // 3):
                        continue
                if self._closing:
                    raise OutboxClosedError(f"outbox {self._path} closed while waiting for room")
                if self._limits.overflow is OverflowPolicy.RAISE:
                    # Back-pressure is on until an ack makes room, or, when the filesystem
                    # was full, until the next try (space may be freed by something else).
                    self._refused = True
                    self._refused_for_disk = self._disk_error is not None
                    raise OutboxFullError(
                        f"outbox full ({self._count} records, {self._disk} bytes on disk"
                        + (f", filesystem full: {self._disk_error}" if self._disk_error else "")
                        + ")"
                    )
                self._blocked = True
                try:
                    if self._disk_error is None:
                        await self._changed.wait()
                    else:
                        left = self._disk_retry_at - self._clock.monotonic()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._changed.wait(), max(0.01, left))
                finally:
                    self._blocked = False

    async def _maybe_prune(self, gen: int) -> None:
        """Deletes de-dup generations older than the three newest, one chunk per call."""
        below = gen - 2
        if self._pruned_gen is not None and self._pruned_gen >= below:
            return
        deleted: int = await self._run(self._prune_sync, below)
        if deleted < _PRUNE_CHUNK:
            self._pruned_gen = below

    async def peek(self, max_records: int, max_bytes: int) -> Peeked:
        if max_records < 1 or max_bytes < 1:
            raise ValueError("peek needs max_records >= 1 and max_bytes >= 1")
        rows: list[StoredRecord] = await self._run(self._peek_sync, max_records, max_bytes)
        return Peeked(self._boot_id, tuple(rows))

    async def ack(self, boot_id: UUID, through_seq: int) -> int:
        if boot_id != self._boot_id:
            raise OutboxError(f"ack for boot {boot_id}, but this outbox is boot {self._boot_id}")
        through = min(through_seq, self._last_seq)
        now = self._clock.now().timestamp()
        deleted: int = await self._run(self._ack_sync, through, now)
        await self._maybe_expire(now)
        if deleted:
            self._refused = False
            await self._notify()
        return deleted

    async def dead_letter(self, boot_id: UUID, seq: int, reason: str) -> None:
        if boot_id != self._boot_id:
            raise OutboxError(f"dead letter for boot {boot_id}, outbox is boot {self._boot_id}")
        await self._run(self._dead_letter_sync, seq, reason, self._clock.now().timestamp())

    async def dead_letters(self) -> list[DeadLettered]:
        rows: list[DeadLettered] = await self._run(self._dead_letters_sync)
        return rows

    async def _maybe_expire(self, now: float) -> None:
        """Deletes records kept longer than the window, a chunk at a time, at most each minute."""
        if not self._retained.count or now - self._expired_at < replay.ACK_MERGE_SECONDS:
            return
        cutoff = now - self._limits.replay_window.total_seconds()
        if await self._run(self._expire_sync, cutoff) < replay.EXPIRE_CHUNK:
            self._expired_at = now

    async def replay(self, boot_id: UUID, from_seq: int) -> Reopened:
        if boot_id != self._boot_id:
            raise OutboxError(f"replay for boot {boot_id}, but this outbox is boot {self._boot_id}")
        async with self._append_lock:
            result: Reopened = await self._run(self._reopen_sync, max(1, from_seq))
        await self._notify()
        return result

    async def rebase(self) -> UUID:
        async with self._append_lock:
            new: UUID = await self._run(self._rebase_sync)
        await self._notify()
        return new

    async def wait_for_records(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._count > 0 or self._closed)

    async def _notify(self) -> None:
        self._fill.add(self._clock.monotonic(), self._ratio())
        async with self._changed:
            self._changed.notify_all()

    def _pending_disk(self) -> int:
        """The share of the file's pages the pending records hold (kept ones give way)."""
        total = self._bytes + self._retained.bytes
        return self._disk if total == 0 else self._disk * self._bytes // total

    def _ratio(self) -> float:
        return max(
            self._count / self._limits.max_records, self._pending_disk() / self._usable_bytes()
        )

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
            or self._still_refused()
            or self._count >= self._limits.max_records
            or self._pending_disk() >= self._usable_bytes(),
            duplicates_dropped=self._duplicates,
            disk_bytes=self._disk,
            disk_full=self._disk_error is not None,
            disk_error=self._disk_error,
            retained=self._retained.count,
            retained_bytes=self._retained.bytes,
            retained_from_seq=self._retained.first_seq,
            replay_since=None if self._retained.since is None else _ts(self._retained.since),
            replay_window=self._limits.replay_window,
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


@dataclass(frozen=True)
class Opened:
    outbox: SqliteOutbox
    moved_aside: Path | None = None
    """Where a damaged file was moved before a fresh one was started."""
    damage: str | None = None


async def open_outbox(path: Path, limits: OutboxLimits, clock: Clock) -> Opened:
    """Opens the outbox; a damaged file is moved aside and a fresh one (new boot id) started."""
    try:
        return Opened(await SqliteOutbox.open(path, limits, clock))
    except OutboxCorruptError as err:
        target = move_aside(path, clock.now())
        path.with_name(path.name + ".damaged").unlink(missing_ok=True)
        log.critical("outbox %s damaged (%s); moved to %s, a fresh one starts", path, err, target)
        return Opened(await SqliteOutbox.open(path, limits, clock), target, str(err))


def decode(payload: str) -> Record:
    """The record back from its stored JSON (for tools and tests; the uplink sends it as is)."""
    return _RECORD.validate_json(payload)


def decode_all(rows: Iterable[StoredRecord]) -> list[Record]:
    return [decode(row.payload) for row in rows]
