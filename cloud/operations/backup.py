"""Physical backups of the cloud's PostgreSQL cluster and restores from them.

``backup`` runs ``pg_basebackup`` (plain format, the WAL needed for consistency streamed with it,
a fast checkpoint) into a new folder named by its UTC start time, checks it with
``pg_verifybackup`` against the manifest PostgreSQL writes, and notes what it is in
``coldtrace-backup.json``. A physical copy is the whole cluster (every database, roles,
TimescaleDB's catalogue and chunks as they are), so it restores with no extension-specific steps,
onto the same PostgreSQL major version and TimescaleDB build.

``archive_wal`` runs ``pg_receivewal`` in the foreground (``--synchronous``, optionally on a
replication slot so no segment is missed while it is down): with it, a restore can replay up to
the last transaction the archive received (or to ``target_time``) instead of stopping at the base
backup.

``restore`` copies a verified backup into a new, empty data directory owned by the server's
user. With a WAL archive it writes ``restore_command`` and the recovery target into
``postgresql.auto.conf`` and creates ``recovery.signal``; the server replays the archive when it
starts and then opens for writes. Starting the server is left to the caller (systemd, compose,
``pg_ctl``): this module never touches a running cluster.

Records the restored database lost are refilled by the gateways from their replay window
(``edge.outbox_replay``); data entered by people after the restore point is not (see
docs/operations.md for the recovery point and time this gives).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from cloud.operations import OperationsError

MANIFEST = "coldtrace-backup.json"


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    label: str
    started_at: datetime
    finished_at: datetime
    server_version: str
    timescaledb: str | None
    size_bytes: int


def pg_bindir(major: int | None = None) -> Path:
    """The client binaries of PostgreSQL ``major`` (Debian's layout), else those on PATH."""
    root = Path("/usr/lib/postgresql")
    if major is not None and (root / str(major) / "bin" / "pg_basebackup").exists():
        return root / str(major) / "bin"
    found = sorted(root.glob("*/bin/pg_basebackup"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_basebackup")
    if on_path is None:
        raise OperationsError("pg_basebackup not found: install the PostgreSQL client programs")
    return Path(on_path).parent


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise OperationsError(f"{Path(cmd[0]).name} failed: {' / '.join(detail[-3:])}")
    return proc.stdout


def _server(database_url: str) -> tuple[int, str, str | None]:
    """(major version, full version, TimescaleDB version installed or None) of the server.

    A backup copies every database; the version the server offers is the one that must be
    installed where it is restored."""
    try:
        with psycopg.connect(database_url, connect_timeout=10) as conn:
            num, full = conn.execute(
                "SELECT current_setting('server_version_num')::int, version()"
            ).fetchone() or (0, "")
            row = conn.execute(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
            ).fetchone()
    except psycopg.OperationalError as err:
        raise OperationsError(f"cannot connect to the database: {err}") from err
    return int(num) // 10000, str(full), None if row is None else str(row[0])


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def backup(database_url: str, target: Path, *, now: datetime | None = None) -> BackupInfo:
    """Takes a verified base backup of the cluster behind ``database_url`` into ``target``."""
    major, full, timescale = _server(database_url)
    started = now or datetime.now(UTC)
    label = f"coldtrace-{started.strftime('%Y%m%dT%H%M%SZ')}"
    dest = target / label
    if dest.exists():
        raise OperationsError(f"{dest} already exists")
    target.mkdir(parents=True, exist_ok=True)
    bindir = pg_bindir(major)
    _run(
        [
            str(bindir / "pg_basebackup"),
            "--dbname",
            database_url,
            "--pgdata",
            str(dest),
            "--format=plain",
            "--wal-method=stream",
            "--checkpoint=fast",
            "--label",
            label,
            "--no-password",
        ]
    )
    _run([str(bindir / "pg_verifybackup"), str(dest)])
    info = BackupInfo(dest, label, started, datetime.now(UTC), full, timescale, _size(dest))
    record = {**asdict(info), "path": str(dest), "major": major}
    (dest / MANIFEST).write_text(json.dumps(record, default=str, indent=2) + "\n")
    return info


def read_info(path: Path) -> dict[str, object]:
    try:
        info: dict[str, object] = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError as err:
        raise OperationsError(f"{path} is not a coldtrace backup (no {MANIFEST})") from err
    return info


def archive_wal_command(database_url: str, archive: Path, slot: str | None = None) -> list[str]:
    """The ``pg_receivewal`` command that keeps ``archive`` filled (run it as a service)."""
    major, _, _ = _server(database_url)
    cmd = [
        str(pg_bindir(major) / "pg_receivewal"),
        "--dbname",
        database_url,
        "--directory",
        str(archive),
        "--synchronous",
        "--no-password",
    ]
    if slot is not None:
        if not re.fullmatch(r"[a-z0-9_]{1,63}", slot):
            raise OperationsError(f"slot name {slot!r}: lower-case letters, digits and _ only")
        cmd += ["--slot", slot]
    return cmd


def archive_wal(database_url: str, archive: Path, slot: str | None = None) -> int:
    """Streams WAL into ``archive`` until stopped; returns pg_receivewal's exit status."""
    archive.mkdir(parents=True, exist_ok=True)
    cmd = archive_wal_command(database_url, archive, slot)
    if slot is not None:
        create = [*cmd, "--create-slot", "--if-not-exists"]
        _run(create)
    return subprocess.run(cmd, check=False).returncode  # noqa: S603


def restore(
    source: Path,
    pgdata: Path,
    *,
    owner: str | None = None,
    wal_archive: Path | None = None,
    target_time: datetime | None = None,
) -> dict[str, object]:
    """Makes ``pgdata`` a copy of the backup at ``source``, ready to start (and recover)."""
    info = read_info(source)
    if target_time is not None and wal_archive is None:
        raise OperationsError("a recovery target time needs the WAL archive (--wal-archive)")
    if pgdata.exists() and any(pgdata.iterdir()):
        raise OperationsError(f"{pgdata} is not empty: restore into a new data directory")
    major = int(str(info.get("major", 0)))
    bindir = pg_bindir(major or None)
    _run([str(bindir / "pg_verifybackup"), "--ignore", MANIFEST, str(source)])
    shutil.copytree(source, pgdata, dirs_exist_ok=True)
    (pgdata / MANIFEST).unlink(missing_ok=True)
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    if wal_archive is not None:
        _recovery_settings(pgdata, wal_archive.resolve(), target_time)
    pgdata.chmod(0o700)
    if owner is not None:
        entry = pwd.getpwnam(owner)
        for path in [pgdata, *pgdata.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    return {**info, "restored_into": str(pgdata), "wal_archive": str(wal_archive or "")}


def _recovery_settings(pgdata: Path, archive: Path, target_time: datetime | None) -> None:
    # pg_receivewal leaves the segment it is writing as .partial: recovery takes it too.
    fetch = f"cp {archive}/%f %p 2>/dev/null || cp {archive}/%f.partial %p"
    lines = [
        "# coldtrace db restore: recovery from the WAL archive",
        f"restore_command = '{fetch}'",
        "recovery_target_action = 'promote'",
    ]
    if target_time is not None:
        lines.append(f"recovery_target_time = '{target_time.astimezone(UTC).isoformat()}'")
    with (pgdata / "postgresql.auto.conf").open("a") as fh:
        fh.write("\n".join(lines) + "\n")
    (pgdata / "recovery.signal").touch()
