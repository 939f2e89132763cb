"""Reports an inspector accepts: rendering (PDF through WeasyPrint, CSV), archive, schedules.

Each report kind has one module that gathers its figures through the same functions the API
uses (so a report never disagrees with ``/v1/...``), and turns them into an HTML document
(``document.py``, printed to PDF by ``pdf.py``) and a CSV file. Every generated report is
archived byte for byte with its SHA-256 (``archive.py``) and can be fetched again unchanged.

Exceptions::

    ReportError              any refusal of this room
    ├── ReportInputError     parameters that make no report (unknown unit, end before start)
    └── ReportNotFoundError  no such archived report
"""

from __future__ import annotations


class ReportError(Exception):
    """A report that cannot be made or found."""


class ReportInputError(ReportError):
    """Parameters that make no report: an unknown subject, an empty or too long period."""


class ReportNotFoundError(ReportError):
    """No archived report with that id."""
