"""Filtering and exporting ``audit_log`` (read-only; inside the caller's connection).

A filter value ending in ``*`` matches by prefix (``account.*``, ``lot:*``); ``%`` and ``_``
are taken literally.

>>> like("account.*"), like("lot:12"), like("50%_off*")
('account.%', 'lot:12', '50\\\\%\\\\_off%')
>>> as_csv([])
'audit_id,at,actor,action,subject,reason,detail\\r\\n'
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.spreadsheet import csv_writer, text_cell

MAX_EXPORT = 100_000
"""Rows in one export at most; narrow the filter for more."""


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    """Who (``*`` for a prefix)."""
    action: str | None = None
    """What (``*`` for a prefix, e.g. ``account.*``)."""
    subject: str | None = None
    """Which object (``lot:12``; ``lot:*`` for every lot)."""
    since: datetime | None = None
    """From this time, inclusive."""
    until: datetime | None = None
    """Until this time, exclusive."""
    before: int | None = None
    """Only entries older than this audit id (paging)."""


@dataclass(frozen=True)
class AuditRow:
    audit_id: int
    at: datetime
    actor: str
    action: str
    subject: str
    reason: str | None
    detail: dict[str, Any]


def like(value: str) -> str:
    """A LIKE pattern for a filter value: literal, or a prefix when it ends with ``*``."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped[:-1] + "%" if escaped.endswith("*") else escaped


async def entries(conn: AsyncConnection[TupleRow], f: AuditFilter, *, limit: int) -> list[AuditRow]:
    """Matching entries, newest first."""
    cur = await conn.execute(
        "SELECT audit_id, at, actor, action, subject, reason, detail FROM audit_log"
        " WHERE (%(actor)s::text IS NULL OR actor LIKE %(actor)s)"
        " AND (%(action)s::text IS NULL OR action LIKE %(action)s)"
        " AND (%(subject)s::text IS NULL OR subject LIKE %(subject)s)"
        " AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)"
        " AND (%(until)s::timestamptz IS NULL OR at < %(until)s)"
        " AND (%(before)s::bigint IS NULL OR audit_id < %(before)s)"
        " ORDER BY audit_id DESC LIMIT %(limit)s",
        {
            "actor": None if f.actor is None else like(f.actor),
            "action": None if f.action is None else like(f.action),
            "subject": None if f.subject is None else like(f.subject),
            "since": f.since,
            "until": f.until,
            "before": f.before,
            "limit": limit,
        },
    )
    return [AuditRow(int(r[0]), r[1], str(r[2]), str(r[3]), str(r[4]), r[5], dict(r[6]))
            for r in await cur.fetchall()]  # fmt: skip


def as_csv(rows: Sequence[AuditRow]) -> str:
    """RFC 4180 CSV, times in UTC (ISO 8601), details as JSON; a cell a spreadsheet would run
    as a formula is prefixed with ``'`` (``cloud.spreadsheet``)."""
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(["audit_id", "at", "actor", "action", "subject", "reason", "detail"])
    for r in rows:
        cells = [r.audit_id, r.at.isoformat(), r.actor, r.action, r.subject, r.reason or "",
                 json.dumps(r.detail, sort_keys=True, ensure_ascii=False)]  # fmt: skip
        writer.writerow([_safe(c) for c in cells])
    return out.getvalue()


def _safe(cell: object) -> object:
    return text_cell(cell) if isinstance(cell, str) else cell
