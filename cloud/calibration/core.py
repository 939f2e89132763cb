"""Calibration status and flagged periods, from calibration records (pure).

A calibration done on day D is valid from the start of D (the site's day) until the end of its
``next_due`` day; from then on the sensor is overdue until the next calibration's day. A failed
calibration flags the sensor from its day until the next calibration.

>>> from datetime import UTC, date, datetime
>>> c = Calibration(1, "s1", date(2026, 1, 10), "CERT-1", "pass", 0.1, None, date(2026, 2, 10),
...                 None, "qa", datetime(2026, 1, 10, tzinfo=UTC))
>>> status_on([c], date(2026, 2, 1), lead=timedelta(days=14)).state
'due_soon'
>>> [(a.isoformat(), b.isoformat()) for a, b, _ in flagged_spans(
...     [c], start=datetime(2026, 2, 1, tzinfo=UTC), end=datetime(2026, 3, 1, tzinfo=UTC),
...     zone="UTC")]
[('2026-02-11T00:00:00+00:00', '2026-03-01T00:00:00+00:00')]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Result = Literal["pass", "adjusted", "fail"]
State = Literal["valid", "due_soon", "overdue", "failed", "unknown"]
Reason = Literal["overdue", "failed"]


@dataclass(frozen=True)
class Calibration:
    calibration_id: int
    sensor_id: str
    calibrated_on: date
    certificate_ref: str
    result: Result
    offset_c: float | None
    uncertainty_c: float | None
    next_due: date
    note: str | None
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class Status:
    state: State
    last: Calibration | None
    days_left: int | None
    """Days until the due date (negative: days overdue); None without a record."""


def _ordered(records: Sequence[Calibration]) -> list[Calibration]:
    return sorted(records, key=lambda c: (c.calibrated_on, c.calibration_id))


def current(records: Sequence[Calibration], day: date) -> Calibration | None:
    """The calibration in force on ``day``: the latest done on or before it."""
    done = [c for c in _ordered(records) if c.calibrated_on <= day]
    return done[-1] if done else None


def status_on(records: Sequence[Calibration], day: date, *, lead: timedelta) -> Status:
    """The status on ``day``; ``due_soon`` within ``lead`` of the due date."""
    last = current(records, day)
    if last is None:
        return Status("unknown", None, None)
    left = (last.next_due - day).days
    if last.result == "fail":
        return Status("failed", last, left)
    if left < 0:
        return Status("overdue", last, left)
    if timedelta(days=left) <= lead:
        return Status("due_soon", last, left)
    return Status("valid", last, left)


def _start_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def flagged_spans(
    records: Sequence[Calibration], *, start: datetime, end: datetime, zone: str
) -> list[tuple[datetime, datetime, Reason]]:
    """Parts of [start, end) when the sensor's calibration was overdue or had failed."""
    tz = ZoneInfo(zone)
    ordered = _ordered(records)
    spans: list[tuple[datetime, datetime, Reason]] = []
    for i, c in enumerate(ordered):
        following = ordered[i + 1] if i + 1 < len(ordered) else None
        until = _start_of(following.calibrated_on, tz) if following else end
        reason: Reason = "failed" if c.result == "fail" else "overdue"
        first = c.calibrated_on if reason == "failed" else c.next_due + timedelta(days=1)
        a, b = max(_start_of(first, tz), start), min(until, end)
        if a < b:
            spans.append((a, b, reason))
    return spans
