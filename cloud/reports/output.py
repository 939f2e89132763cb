"""One report in either format: the HTML printed to PDF, or the rows written as CSV.

CSV cells that a spreadsheet would run as a formula (``=+-@``, tab, CR first) get a leading
apostrophe; numbers are written with ``repr`` (no rounding), times in UTC (RFC 3339).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cloud.reports.archive import Format, Kind, Rendered
from cloud.reports.pdf import print_pdf
from cloud.spreadsheet import csv_writer, text_cell


def cell(value: object) -> str:
    """A CSV cell: times in UTC, durations in seconds, text safe from formula injection.

    >>> cell(datetime(2026, 1, 1, 10, tzinfo=UTC)), cell(-1.5), cell("=cmd"), cell(None)
    ('2026-01-01T10:00:00Z', '-1.5', "'=cmd", '')
    """
    if value is None:
        text = ""
    elif isinstance(value, datetime):
        text = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, timedelta):
        text = repr(value.total_seconds())
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, int | float):
        text = repr(value)
    else:
        text = text_cell(str(value))
    return text


def write_csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    out = io.StringIO()
    w = csv_writer(out)
    w.writerow(header)
    w.writerows([cell(v) for v in row] for row in rows)
    return out.getvalue().encode()


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)[:120]


def output(
    kind: Kind,
    fmt: Format,
    *,
    title: str,
    stem: str,
    parameters: dict[str, Any],
    html: Callable[[], str],
    table: Callable[[], tuple[Sequence[str], Sequence[Sequence[object]]]],
) -> Rendered:
    """The report ``kind`` in ``fmt``: only the chosen format is built."""
    content = print_pdf(html()) if fmt == "pdf" else write_csv(*table())
    return Rendered(kind, fmt, title, f"{safe_name(stem)}.{fmt}", parameters, content)
