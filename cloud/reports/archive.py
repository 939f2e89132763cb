"""The report archive: every generated report, byte for byte, with its SHA-256.

The database refuses a row whose hash does not match its bytes and refuses any change after
the insert (migration 0140), so what ``fetch`` returns is exactly what was handed out first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from cloud.reports import ReportNotFoundError

Kind = Literal["unit", "excursion", "lot", "mkt", "calibration"]
Format = Literal["pdf", "csv"]
MEDIA_TYPES: dict[str, str] = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8"}


@dataclass(frozen=True)
class Rendered:
    """A report as made, before it is archived."""

    kind: Kind
    format: Format
    title: str
    filename: str
    parameters: dict[str, Any]
    content: bytes

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


@dataclass(frozen=True)
class Archived:
    report_id: int
    kind: Kind
    format: Format
    title: str
    parameters: dict[str, Any]
    created_by: str
    created_at: datetime
    media_type: str
    filename: str
    size: int
    sha256: str
    """hex"""


_COLUMNS = (
    "report_id, kind, format, title, parameters, created_by, created_at, media_type,"
    " filename, size, encode(sha256, 'hex')"
)


def _archived(row: tuple[Any, ...]) -> Archived:
    return Archived(*row)


async def store(conn: AsyncConnection[TupleRow], report: Rendered, *, created_by: str) -> Archived:
    """Archives ``report`` (inside the caller's transaction) and returns its record."""
    digest = hashlib.sha256(report.content).digest()
    cur = await conn.execute(
        "INSERT INTO report_archive (kind, format, title, parameters, created_by, media_type,"
        " filename, size, sha256, content) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        f" RETURNING {_COLUMNS}",
        (
            report.kind, report.format, report.title, Jsonb(report.parameters), created_by,
            report.media_type, report.filename, len(report.content), digest, report.content,
        ),
    )  # fmt: skip
    row = await cur.fetchone()
    assert row is not None
    return _archived(row)


async def record(conn: AsyncConnection[TupleRow], report_id: int) -> Archived:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM report_archive WHERE report_id = %s", (report_id,)
    )
    row = await cur.fetchone()
    if row is None:
        raise ReportNotFoundError(f"no report {report_id}")
    return _archived(row)


async def fetch(conn: AsyncConnection[TupleRow], report_id: int) -> tuple[Archived, bytes]:
    """The archived record and its bytes, as first stored."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS}, content FROM report_archive WHERE report_id = %s", (report_id,)
    )
    row = await cur.fetchone()
    if row is None:
        raise ReportNotFoundError(f"no report {report_id}")
    return _archived(row[:-1]), bytes(row[-1])


async def listing(
    conn: AsyncConnection[TupleRow], *, kind: Kind | None, limit: int
) -> list[Archived]:
    """The newest archived reports first, of one kind or all."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM report_archive WHERE %(kind)s::text IS NULL OR kind = %(kind)s"
        " ORDER BY report_id DESC LIMIT %(limit)s",
        {"kind": kind, "limit": limit},
    )
    return [_archived(r) for r in await cur.fetchall()]
