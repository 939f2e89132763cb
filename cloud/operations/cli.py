"""``coldtrace db backup | restore | archive-wal``: the arguments and their handler."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cloud.operations import OperationsError, backup


def add_arguments(db: argparse.ArgumentParser) -> None:
    group = db.add_argument_group("backup, restore and archive-wal")
    group.add_argument("--to", type=Path, help="backup/archive-wal: the folder to write into")
    group.add_argument("--from", dest="source", type=Path, help="restore: the backup folder")
    group.add_argument("--pgdata", type=Path, help="restore: a new, empty data directory")
    group.add_argument(
        "--owner", help="restore: the server's system user (default: postgres when root)"
    )
    group.add_argument(
        "--wal-archive", type=Path, help="restore: replay this WAL archive after the backup"
    )
    group.add_argument(
        "--target-time",
        type=_aware,
        help="restore: stop the replay at this time (ISO 8601 with offset; default: the end)",
    )
    group.add_argument("--slot", help="archive-wal: a replication slot, created if missing")


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset (e.g. +00:00)")
    return value.astimezone(UTC)


def run(args: argparse.Namespace, database_url: Callable[[argparse.Namespace], str]) -> int:
    if args.action == "backup":
        target = _needed(args.to, "--to")
        info = backup.backup(database_url(args), target)
        print(json.dumps({"backup": str(info.path), "size_bytes": info.size_bytes,
                          "started_at": info.started_at.isoformat(),
                          "finished_at": info.finished_at.isoformat()}, indent=2))  # fmt: skip
        return 0
    if args.action == "archive-wal":
        return backup.archive_wal(database_url(args), _needed(args.to, "--to"), args.slot)
    owner = args.owner
    if owner is None:
        owner = "postgres" if os.geteuid() == 0 else None
    result = backup.restore(
        _needed(args.source, "--from"),
        _needed(args.pgdata, "--pgdata"),
        owner=owner,
        wal_archive=args.wal_archive,
        target_time=args.target_time,
    )
    print(json.dumps(result, indent=2, default=str))
    return 0


def _needed(value: Path | None, flag: str) -> Path:
    if value is None:
        raise OperationsError(f"{flag} is required for this action")
    return value
