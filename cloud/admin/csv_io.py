"""CSV export and import of master data, with a dry run that shows what would change.

An export is one file per kind (``cloud.admin.writes.KINDS``) with a header row, in an order that
imports again as it is (parents before children). An import reads the file with Python's
``csv`` module and writes every row through the same ``Kind.write`` the admin pages use, in one
transaction: each row in its own savepoint, so a bad row is reported with its line number and
the rows after it are still checked. The dry run does exactly the same writes and then rolls
the transaction back, so what it reports (``created``, ``updated``, ``unchanged``, or the row's
error) is what an apply would do. An apply commits only when no row was refused: one bad row
and nothing is applied.

Exceptions::

    CsvFileError    the file as a whole is refused (not UTF-8, no header, unknown or missing
                    columns, too many rows)
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.admin.writes import KINDS, Kind, Outcome, RowError

MAX_ROWS = 20_000
"""More rows than a site's master data has; one import is one transaction."""


class CsvFileError(ValueError):
    """The file cannot be read as that kind's CSV at all."""


@dataclass(frozen=True)
class RowReport:
    line: int
    """The line of the file the row ends on (the header is line 1)."""
    key: str
    outcome: Outcome | None
    """None when the row was refused."""
    error: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


@dataclass
class ImportReport:
    kind: str
    dry_run: bool
    applied: bool = False
    rows: list[RowReport] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for r in self.rows if r.error is not None)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)


def kind_of(name: str) -> Kind:
    if name not in KINDS:
        raise CsvFileError(f"unknown kind {name!r}; one of {', '.join(KINDS)}")
    return KINDS[name]


async def export_csv(conn: AsyncConnection[TupleRow], kind: Kind) -> str:
    """Every row of ``kind`` as CSV text with a header (empty cell: no value)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(kind.columns), lineterminator="\r\n")
    writer.writeheader()
    for row in await kind.rows(conn):
        writer.writerow({c: row.get(c, "") for c in kind.columns})
    return out.getvalue()


def _reader(kind: Kind, text: str) -> csv.DictReader[str]:
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = reader.fieldnames
    if not header:
        raise CsvFileError("the file is empty: the first line must name the columns")
    names = [h.strip() for h in header]
    unknown = sorted(set(names) - set(kind.columns))
    if unknown:
        raise CsvFileError(
            f"unknown column(s) {', '.join(unknown)}; {kind.name} has {', '.join(kind.columns)}"
        )
    missing = [k for k in kind.key if k not in names]
    if missing:
        raise CsvFileError(f"missing key column(s) {', '.join(missing)}")
    if len(set(names)) != len(names):
        raise CsvFileError("a column is named twice")
    reader.fieldnames = names
    return reader


async def import_csv(
    conn: AsyncConnection[TupleRow], kind: Kind, text: str, *, actor: str, reason: str,
    apply: bool,
) -> ImportReport:  # fmt: skip
    """Checks (``apply=False``) or applies every row of ``text`` in one transaction."""
    reader = _reader(kind, text)
    report = ImportReport(kind=kind.name, dry_run=not apply)
    seen: dict[tuple[str, ...], int] = {}
    try:
        async with conn.transaction() as tx:
            for row in reader:
                if len(report.rows) >= MAX_ROWS:
                    raise CsvFileError(f"more than {MAX_ROWS} rows: split the file")
                report.rows.append(await _one(conn, kind, row, reader.line_num, seen,
                                              actor=actor, reason=reason))  # fmt: skip
            report.applied = apply and not report.errors
            if not report.applied:
                # a dry run, or a refused row: nothing of the file stays
                raise psycopg.Rollback(tx)
    except csv.Error as err:
        raise CsvFileError(f"line {reader.line_num}: {err}") from err
    return report


async def _one(
    conn: AsyncConnection[TupleRow], kind: Kind, raw: dict[str | Any, str | Any], line: int,
    seen: dict[tuple[str, ...], int], *, actor: str, reason: str,
) -> RowReport:  # fmt: skip
    if None in raw:
        return RowReport(line, "", None, "more cells than columns")
    row = {k: (v or "") for k, v in raw.items()}
    key = tuple(row.get(k, "").strip() for k in kind.key)
    label = "/".join(key)
    if key in seen:
        return RowReport(line, label, None, f"the same {'/'.join(kind.key)} as line {seen[key]}")
    seen[key] = line
    try:
        async with conn.transaction():
            done = await kind.write(conn, row, actor, reason)
    except RowError as err:
        return RowReport(line, label, None, str(err))
    except psycopg.errors.DataError as err:
        # a value PostgreSQL itself refuses (an out-of-range interval, ...)
        return RowReport(line, label, None, err.diag.message_primary or "invalid value")
    return RowReport(line, done.key, done.outcome, None, done.before, done.after)
