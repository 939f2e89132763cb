"""CSV cells that a spreadsheet shows as text and never runs as a formula (CSV injection).

Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a
formula, and skip a leading tab, CR or LF before looking (OWASP, "CSV Injection"). Text that
starts so, from anyone who could put it there (a gateway's dead letter, a lot number, an audit
reason), gets a leading apostrophe, which the spreadsheet shows as text. A plain number
(``-18.5``, ``+3``, ``1e-3``) is no formula and is left alone: a temperature stays a number.

A cell with a CR or LF inside must be quoted, or the spreadsheet starts a new row there and the
rest of the cell is a cell of its own, apostrophe or not: Python's ``csv`` quotes a bare CR only
when it is part of the line terminator, so every writer is ``csv_writer`` (RFC 4180's CRLF).

Every text cell the cloud writes goes through ``text_cell``; a CSV it reads back (master-data
import) goes through ``read_cell``, which undoes exactly what ``text_cell`` added, so an export
imports as it is.

>>> text_cell("=HYPERLINK(\\"http://x\\")"), text_cell("-18.5"), text_cell("-2+3"), text_cell("ok")
('\\'=HYPERLINK("http://x")', '-18.5', "'-2+3", 'ok')
>>> all(read_cell(text_cell(t)) == t for t in ["=1+1", "'=1", "''", "'x", "-18.5", "\\t=1", ""])
True
"""

from __future__ import annotations

import csv
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _csv import Writer

    from _typeshed import SupportsWrite

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
"""First characters that make a spreadsheet read a cell as a formula."""
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_ESCAPED = (*FORMULA_START, "'")
"""After a leading apostrophe: an apostrophe ``text_cell`` added (``read_cell`` removes it)."""


def text_cell(text: str) -> str:
    """``text`` as a cell a spreadsheet will not run: an apostrophe before a formula start."""
    if text.startswith(FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    if text.startswith("'") and text[1:].startswith(_ESCAPED):
        return "'" + text  # so that reading it back removes only this apostrophe
    return text


def read_cell(cell: str) -> str:
    """The text ``text_cell`` was given: its apostrophe removed, anything else kept as it is."""
    if cell.startswith("'") and cell[1:].startswith(_ESCAPED):
        return cell[1:]
    return cell


def csv_writer(out: SupportsWrite[str]) -> Writer:
    """A ``csv.writer`` on ``out`` that quotes every cell holding a CR or LF (CRLF lines)."""
    return csv.writer(out, lineterminator="\r\n")
