"""CSV export and import of master data, with a dry run that shows what would change.

An export is one file per kind (``cloud.admin.writes.KINDS``) with a header row, in an order that
imports again as it is (parents before children). An import reads the file with Python's
``csv`` module and writes every row through the same ``Kind.write`` the admin pages use, in one
transaction: each row as if in its own savepoint, so a bad row is reported with its line number
and the rows after it are still checked (rows go in chunks of ``CHUNK_ROWS`` under one savepoint;
a chunk with a bad row is rolled back and written again row by row, see ``_chunk``). The dry
run does exactly the same writes and then rolls the transaction back, so what it reports
(``created``, ``updated``, ``unchanged``, or the row's error) is what an apply would do. An apply
commits only when no row was refused: one bad row and nothing is applied.

Exceptions::

    CsvFileError    the file as a whole is refused (not UTF-8, no header, unknown or missing
                    columns, too many rows)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.admin.writes import KINDS, Kind, Outcome, RowError
from cloud.spreadsheet import read_cell, text_cell

MAX_ROWS = 100_000
"""A distribution centre's catalogue or lots. One import is one transaction and its answer lists
every row: 50,000 rows took about a minute and 165 MiB of the process (docs/admin.md)."""
CHUNK_ROWS = 500
"""Rows written under one savepoint and one pipeline (``_chunk``)."""


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
    """Every row of ``kind`` as CSV text with a header (empty cell: no value); text a
    spreadsheet would run as a formula gets an apostrophe, which the import removes again."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(kind.columns), lineterminator="\r\n")
    writer.writeheader()
    for row in await kind.rows(conn):
        writer.writerow({c: text_cell(row.get(c, "")) for c in kind.columns})
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
            for chunk in _chunks(reader):
                report.rows += await _chunk(conn, kind, chunk, seen, actor=actor, reason=reason)
            report.applied = apply and not report.errors
            if not report.applied:
                # a dry run, or a refused row: nothing of the file stays
                raise psycopg.Rollback(tx)
    except csv.Error as err:
        raise CsvFileError(f"line {reader.line_num}: {err}") from err
    return report


Raw = dict[str | Any, str | Any]


def _chunks(reader: csv.DictReader[str]) -> Iterator[list[tuple[int, Raw]]]:
    """The file's rows with their line numbers, ``CHUNK_ROWS`` at a time."""
    chunk: list[tuple[int, Raw]] = []
    for count, row in enumerate(reader, start=1):
        if count > MAX_ROWS:
            raise CsvFileError(f"more than {MAX_ROWS} rows: split the file")
        chunk.append((reader.line_num, row))
        if len(chunk) == CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _RowRefusedError(Exception):
    """A row of a chunk written without its own savepoint failed: write the chunk row by row."""


async def _chunk(
    conn: AsyncConnection[TupleRow], kind: Kind, chunk: list[tuple[int, Raw]],
    seen: dict[tuple[str, ...], int], *, actor: str, reason: str,
) -> list[RowReport]:  # fmt: skip
    """Writes ``chunk`` under one savepoint, pipelined; row by row if any row is refused.

    A savepoint and a round trip per row made a 50,000-row file take minutes. Clean chunks (the
    usual case) are written together; a chunk with a refused row is rolled back and written
    again, each row in its own savepoint, so the report and what an apply keeps are exactly
    those of writing every row alone.
    """
    seen_before = dict(seen)
    try:
        async with conn.pipeline(), conn.transaction():
            return [await _one(conn, kind, raw, line, seen, actor=actor, reason=reason,
                               alone=False) for line, raw in chunk]  # fmt: skip
    except (_RowRefusedError, psycopg.Error):
        # in a pipeline an error may surface at a later row: retry alone to name the row
        seen.clear()
        seen.update(seen_before)
    return [await _one(conn, kind, raw, line, seen, actor=actor, reason=reason, alone=True)
            for line, raw in chunk]  # fmt: skip


async def _one(
    conn: AsyncConnection[TupleRow], kind: Kind, raw: Raw, line: int,
    seen: dict[tuple[str, ...], int], *, actor: str, reason: str, alone: bool,
) -> RowReport:  # fmt: skip
    if None in raw:
        return RowReport(line, "", None, "more cells than columns")
    row = {k: read_cell(v or "") for k, v in raw.items()}
    key = tuple(row.get(k, "").strip() for k in kind.key)
    label = "/".join(key)
    if key in seen:
        return RowReport(line, label, None, f"the same {'/'.join(kind.key)} as line {seen[key]}")
    seen[key] = line
    if not alone:
        try:
            done = await kind.write(conn, row, actor, reason)
        except RowError as err:
            raise _RowRefusedError from err
        return RowReport(line, done.key, done.outcome, None, done.before, done.after)
    try:
        async with conn.transaction():
            done = await kind.write(conn, row, actor, reason)
    except RowError as err:
        return RowReport(line, label, None, str(err))
    except psycopg.errors.DataError as err:
        # a value PostgreSQL itself refuses (an out-of-range interval, ...)
        return RowReport(line, label, None, err.diag.message_primary or "invalid value")
    return RowReport(line, done.key, done.outcome, None, done.before, done.after)
