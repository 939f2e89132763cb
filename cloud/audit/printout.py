"""The filtered audit trail as a PDF, printed with the reports' document style
(``cloud.reports.document``) through WeasyPrint (``cloud.reports.pdf``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cloud.audit.trail import AuditFilter, AuditRow
from cloud.reports.document import esc, facts, page_html, table
from cloud.reports.pdf import print_pdf

MAX_PDF_ROWS = 2_000
"""Entries in one PDF at most (a few dozen pages); narrow the filter, or export CSV, for more."""


def describe(f: AuditFilter) -> list[tuple[str, str]]:
    """The filter in words, escaped, for the document's header."""
    pairs = [
        ("Who", f.actor or "anyone"),
        ("What", f.action or "any action"),
        ("Object", f.subject or "any object"),
        ("From", f.since.isoformat() if f.since else "the beginning"),
        ("Until", f.until.isoformat() if f.until else "now"),
    ]
    return [(k, esc(v)) for k, v in pairs]


def audit_html(
    rows: Sequence[AuditRow], f: AuditFilter, *, printed_by: str, at: datetime, limited: bool
) -> str:
    note = (
        f"<p class='note'>Only the newest {MAX_PDF_ROWS} matching entries: narrow the filter"
        " or export CSV for all.</p>"
        if limited
        else ""
    )
    cells = [
        [
            esc(r.at.strftime("%Y-%m-%d %H:%M:%S")), esc(r.actor), esc(r.action), esc(r.subject),
            esc(r.reason or ""), esc(", ".join(f"{k}: {v}" for k, v in sorted(r.detail.items()))),
        ]
        for r in rows
    ]  # fmt: skip
    body = (
        facts([*describe(f), ("Entries", str(len(rows)))])
        + note
        + table(["When (UTC)", "Who", "What", "Object", "Why", "Details"], cells)
    )
    return page_html(
        "Audit trail", body, subtitle="coldtrace audit_log, newest first",
        generated=f"Printed {at:%Y-%m-%d %H:%M} UTC by {printed_by}",
    )  # fmt: skip


def audit_pdf(rows: Sequence[AuditRow], f: AuditFilter, *, printed_by: str, at: datetime) -> bytes:
    limited = len(rows) > MAX_PDF_ROWS
    shown = rows[:MAX_PDF_ROWS]
    return print_pdf(audit_html(shown, f, printed_by=printed_by, at=at, limited=limited))
