"""The outbox file's relation to its filesystem: disk footprint, a space reserve, damaged files.

A gateway's flash fills up (logs, another container, an outage longer than planned). SQLite in WAL
mode needs to *write* to free space: an acknowledgement deletes rows by appending pages to the
write-ahead log, and a checkpoint may grow the database file. On a full filesystem that can
deadlock: nothing can be deleted because nothing can be written. So the outbox keeps a *reserve*,
a file of ``reserve_bytes`` of real (not sparse) blocks beside the database: when a write that
frees space (an acknowledgement, opening the file) fails with "disk full", the reserve is
released and the write tried again; the reserve is re-created once the filesystem has room
for it twice over.

A file SQLite cannot read as a database (not a database, malformed, failed quick check) is
*moved aside* with its WAL and shared-memory files, never deleted: an operator can still salvage
it (``sqlite3 outbox.db.corrupt-… .recover``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

_CHUNK = 1 << 20

# SQLite primary result codes (https://www.sqlite.org/rescode.html).
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_NOTADB = 26


def primary_code(err: sqlite3.Error) -> int | None:
    code = getattr(err, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def is_disk_full(err: sqlite3.Error) -> bool:
    """SQLITE_FULL, or an I/O error whose cause is ENOSPC (SQLite reports both)."""
    if primary_code(err) == SQLITE_FULL:
        return True
    return "disk is full" in str(err) or "No space left" in str(err)


def is_corrupt(err: sqlite3.Error) -> bool:
    """The file is not a database or is malformed (not an I/O or locking problem)."""
    if primary_code(err) in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return True
    text = str(err)
    damaged = "malformed" in text or "not a database" in text
    return isinstance(err, sqlite3.DatabaseError) and damaged


def companions(path: Path) -> list[Path]:
    """The database file and the WAL and shared-memory files SQLite keeps beside it."""
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def wal_bytes(path: Path) -> int:
    try:
        return os.stat(path.with_name(path.name + "-wal")).st_size
    except FileNotFoundError:
        return 0


def move_aside(path: Path, now: datetime | None = None) -> Path:
    """Renames a damaged outbox and its companions to ``<name>.corrupt-<UTC time>``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for source in companions(path):
        if source.exists():
            os.replace(source, target.with_name(target.name + source.name[len(path.name) :]))
    _fsync_dir(path.parent)
    return target


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Reserve:
    """A file of real blocks kept beside the outbox, released to let a space-freeing write pass.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     r = Reserve(Path(d) / "outbox.db.reserve", 4096)
    ...     r.ensure(), r.path.stat().st_size, r.release(), r.path.exists()
    (True, 4096, True, False)
    """

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    @property
    def held(self) -> bool:
        try:
            return self.path.stat().st_size >= self.size
        except FileNotFoundError:
            return False

    def ensure(self) -> bool:
        """Creates the reserve if the filesystem has room for it twice; True if held."""
        if self.size <= 0 or self.held:
            return self.size > 0
        try:
            stat = os.statvfs(self.path.parent)
        except OSError:
            return False
        if stat.f_bavail * stat.f_frsize < 2 * self.size:
            return False
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with tmp.open("wb") as out:
                left = self.size
                while left > 0:  # real zeros, not a sparse hole: the blocks must be allocated
                    n = min(left, _CHUNK)
                    out.write(b"\0" * n)
                    left -= n
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            log.warning("outbox reserve %s not created: %s", self.path, err)
            return False
        return True

    def release(self) -> bool:
        """Deletes the reserve; True if there was one to free."""
        if not self.path.exists():
            return False
        self.path.unlink(missing_ok=True)
        log.warning("outbox reserve %s released to free disk space", self.path)
        return True


def free_bytes(folder: Path) -> int | None:
    try:
        stat = os.statvfs(folder)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize
