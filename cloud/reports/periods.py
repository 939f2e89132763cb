"""The period a scheduled report covers: the last complete day, ISO week or calendar month in
the site's zone (pure).

>>> from datetime import UTC, datetime
>>> now = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # a Wednesday
>>> [t.isoformat() for t in last_complete("daily", now, "Europe/Paris")]
['2026-03-03T00:00:00+01:00', '2026-03-04T00:00:00+01:00']
>>> [t.date().isoformat() for t in last_complete("weekly", now, "UTC")]
['2026-02-23', '2026-03-02']
>>> [t.date().isoformat() for t in last_complete("monthly", now, "UTC")]
['2026-02-01', '2026-03-01']
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Frequency = Literal["daily", "weekly", "monthly"]


def last_complete(frequency: Frequency, now: datetime, zone: str) -> tuple[datetime, datetime]:
    """[start, end) of the last whole period before ``now``, as the site's local midnights."""
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    if frequency == "daily":
        end = today
        start = end - timedelta(days=1)
    elif frequency == "weekly":
        end = today - timedelta(days=today.weekday())
        start = end - timedelta(days=7)
    else:
        end = today.replace(day=1)
        start = (end - timedelta(days=1)).replace(day=1)
    return datetime.combine(start, time(0), tz), datetime.combine(end, time(0), tz)
