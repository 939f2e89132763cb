"""Data-logger files read out on arrival: a generic CSV and the LogTag Analyzer text export. Pure.

**Generic CSV** (ours): a header row, then one reading per row. Columns ``time`` (RFC 3339 with
an offset) and ``celsius`` are required; ``latitude`` and ``longitude`` are optional. Other
columns are ignored.

**LogTag Analyzer export** (LogTag Recorders' desktop software, *File → Export*, comma
separated; see docs/transfers.md for the source): a block of ``key,value`` lines describing the
recorder (among them ``Serial Number``), then a table whose header row holds ``Date``, ``Time``
and a ``Temperature`` column whose unit is in its name (``°C`` or ``°F``). Dates and times are
written in the reading PC's local time and date format, so the importer is told the zone and
whether dates are day-first; ``°F`` is converted to °C.

Any row that cannot be read refuses the whole file with its line number: half a logger's
history would show the gap as "in range" nowhere, but it would hide what the other half said.
A temperature outside the physical range (``protocols.records.PHYSICAL_RANGE``, as ingest) or a
time that does not fit a UTC timestamp is such a row: one 1e308 would overflow ``avg`` in every
rollup of its hour. ``check_times`` holds the readings to the cloud's clock before they are
stored (older than the backlog horizon, or stamped after the file or request reached the cloud).

>>> doc = "time,celsius\\n2026-03-01T08:00:00Z,4.5\\n2026-03-01T08:10:00+00:00,5.0\\n"
>>> [(s.time.minute, s.celsius) for s in parse_generic(doc)]
[(0, 4.5), (10, 5.0)]
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cloud.transfers import LoggerFileError, TransferRejectedError
from cloud.transfers.loggers import Sample
from protocols.records import MAX_CLOCK_AHEAD, implausible

MAX_ROWS = 200_000


@dataclass(frozen=True)
class LoggerFile:
    """What a file said: the logger's serial (when the file names it) and its readings."""

    serial: str | None
    samples: tuple[Sample, ...]


def _float(text: str, line: int, what: str) -> float:
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError as err:
        raise LoggerFileError(f"line {line}: {what} {text!r} is not a number") from err
    if not math.isfinite(value):
        raise LoggerFileError(f"line {line}: {what} {text!r} is not a finite number")
    return value


def _celsius(value: float, line: int) -> float:
    why = implausible("degC", value)
    if why is not None:
        raise LoggerFileError(f"line {line}: {why}")
    return value


def _utc(at: datetime, line: int, text: str) -> datetime:
    try:
        return at.astimezone(UTC)
    except OverflowError as err:  # year 1 east of UTC, year 9999 west of it
        raise LoggerFileError(f"line {line}: time {text!r} is out of range") from err


def check_times(samples: Sequence[Sample], *, now: datetime, backlog_horizon: timedelta) -> None:
    """Refuses readings older than ``backlog_horizon`` before ``now`` (the cloud's time) or
    stamped more than ``MAX_CLOCK_AHEAD`` after it: a logger read out now, or a tracker
    posting now, has nothing from later, and each day of a decades-long file would be a new
    chunk of ``readings``. The message names the first such reading.

    >>> now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    >>> year = timedelta(days=365)
    >>> check_times([Sample(now - timedelta(days=30), 5.0)], now=now, backlog_horizon=year)
    >>> try:
    ...     check_times([Sample(now + timedelta(hours=1), 5.0)], now=now, backlog_horizon=year)
    ... except TransferRejectedError as err:
    ...     print(str(err).split(" (")[0])
    reading at 2026-03-01T13:00:00+00:00 is stamped after the cloud's time 2026-03-01T12:00:00+00:00
    """
    oldest, newest = now - backlog_horizon, now + MAX_CLOCK_AHEAD
    for s in samples:
        if s.time < oldest:
            raise TransferRejectedError(
                f"reading at {s.time.isoformat()} is older than the backlog horizon of"
                f" {backlog_horizon} before the cloud's time {now.isoformat()}"
            )
        if s.time > newest:
            raise TransferRejectedError(
                f"reading at {s.time.isoformat()} is stamped after the cloud's time"
                f" {now.isoformat()} (more than {MAX_CLOCK_AHEAD} ahead): is the zone right?"
            )


def _rows(document: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(document))
    try:  # stops after MAX_ROWS + 1 rows: a file of tiny rows never becomes millions of lists
        rows = list(itertools.islice(reader, MAX_ROWS + 1))
    except csv.Error as err:  # a field over csv's size limit, an unterminated quote at the end
        raise LoggerFileError(f"line {reader.line_num}: {err}") from err
    if len(rows) > MAX_ROWS:
        raise LoggerFileError(f"more than {MAX_ROWS} lines")
    return rows


def parse_generic(document: str) -> tuple[Sample, ...]:
    """Readings of the generic CSV (see the module docstring); refused with the line named."""
    rows = _rows(document)
    if not rows:
        raise LoggerFileError("line 1: the file is empty")
    header = [h.strip().lower() for h in rows[0]]
    if "time" not in header or "celsius" not in header:
        raise LoggerFileError("line 1: the header needs columns time and celsius")
    col = {name: header.index(name) for name in header}
    out: list[Sample] = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise LoggerFileError(f"line {n}: {len(row)} columns, the header has {len(header)}")
        try:
            at = datetime.fromisoformat(row[col["time"]].strip())
        except ValueError as err:
            raise LoggerFileError(f"line {n}: time {row[col['time']]!r} is not RFC 3339") from err
        if at.tzinfo is None:
            raise LoggerFileError(f"line {n}: time {row[col['time']]!r} has no UTC offset")
        lat = lon = None
        if "latitude" in col and "longitude" in col and row[col["latitude"]].strip():
            lat = _float(row[col["latitude"]], n, "latitude")
            lon = _float(row[col["longitude"]], n, "longitude")
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise LoggerFileError(f"line {n}: position {lat}, {lon} is out of range")
        celsius = _celsius(_float(row[col["celsius"]], n, "celsius"), n)
        out.append(Sample(_utc(at, n, row[col["time"]].strip()), celsius, lat, lon))
    return _ordered(out)


def _ordered(samples: list[Sample]) -> tuple[Sample, ...]:
    if not samples:
        raise LoggerFileError("the file holds no readings")
    return tuple(sorted({s.time: s for s in samples}.values(), key=lambda s: s.time))


_DATE_FORMATS = {
    False: ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y"),
    True: ("%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y", "%d.%m.%Y"),
}
_TIME_FORMATS = ("%H:%M:%S", "%H:%M", "%I:%M:%S %p", "%I:%M %p")


def _local(date_text: str, time_text: str, zone: ZoneInfo, dayfirst: bool, line: int) -> datetime:
    for df in _DATE_FORMATS[dayfirst]:
        for tf in _TIME_FORMATS:
            try:
                text = f"{date_text.strip()} {time_text.strip()}"
                # the export has no offset: the reading PC's zone is given by the importer
                naive = datetime.strptime(text, f"{df} {tf}")  # noqa: DTZ007
            except ValueError:
                continue
            return _utc(naive.replace(tzinfo=zone), line, text)
    raise LoggerFileError(f"line {line}: date and time {date_text!r} {time_text!r} not understood")


def parse_logtag(document: str, *, zone: ZoneInfo, dayfirst: bool) -> LoggerFile:
    """Readings of a LogTag Analyzer export (see the module docstring).

    >>> doc = ("Serial Number,1004123456\\nUser ID,TR-1\\n\\nDate,Time,Temperature (°F)\\n"
    ...        "03/01/2026,08:00:00,41.0\\n03/01/2026,08:10:00,50.0\\n")
    >>> f = parse_logtag(doc, zone=ZoneInfo("UTC"), dayfirst=False)
    >>> f.serial, [(s.time.minute, s.celsius) for s in f.samples]
    ('1004123456', [(0, 5.0), (10, 10.0)])
    """
    rows = _rows(document)
    serial: str | None = None
    header_at: int | None = None
    for i, row in enumerate(rows):
        cells = [c.strip() for c in row]
        if len(cells) >= 2 and cells[0].rstrip(":").lower() == "serial number":
            if not re.fullmatch(r"[!-~]{1,64}", cells[1]):
                raise LoggerFileError(f"line {i + 1}: serial number {cells[1]!r} is not usable")
            serial = cells[1]
        lowered = [c.lower() for c in cells]
        if "date" in lowered and "time" in lowered and any(c.startswith("temp") for c in lowered):
            header_at = i
            break
    if header_at is None:
        raise LoggerFileError("no data table: a header row with Date, Time and Temperature")
    head = [c.strip().lower() for c in rows[header_at]]
    d, t = head.index("date"), head.index("time")
    v = next(i for i, c in enumerate(head) if c.startswith("temp"))
    fahrenheit = "°f" in head[v] or "deg f" in head[v] or "(f)" in head[v]
    out: list[Sample] = []
    for n, row in enumerate(rows[header_at + 1 :], start=header_at + 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(d, t, v):
            raise LoggerFileError(f"line {n}: too few columns")
        value = _float(row[v], n, "temperature")
        celsius = (value - 32) / 1.8 if fahrenheit else value  # no overflow near 1e308
        at = _local(row[d], row[t], zone, dayfirst, n)
        out.append(Sample(at, _celsius(round(celsius, 6), n)))
    return LoggerFile(serial, _ordered(out))
