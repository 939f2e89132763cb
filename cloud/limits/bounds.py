"""Bounds on what a read may ask for: times near now, a bounded number of buckets.

Every read endpoint whose answer grows with a time range or a bucket width checks its query
with these before touching the database, and answers 422 with a message saying what to change.

>>> from datetime import UTC, datetime, timedelta
>>> now = datetime(2026, 1, 1, tzinfo=UTC)
>>> check_not_ahead(now + timedelta(minutes=1), now=now, skew=timedelta(minutes=5), name="at")
>>> try:
...     check_not_ahead(datetime(9999, 12, 30, tzinfo=UTC), now=now, skew=timedelta(minutes=5),
...                     name="at")
... except HTTPException as err:
...     print(err.status_code, err.detail)
422 at is 2912441 days, 0:00:00 ahead of the service's clock (at most 0:05:00)
>>> check_buckets(now, now + timedelta(days=1), timedelta(minutes=1), max_buckets=2000)
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import HTTPException, status

MAX_BUCKET = timedelta(days=366)
"""The widest bucket a read accepts (a year): wider ones overflow date arithmetic near 9999."""


def _refuse(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


def check_not_ahead(value: datetime, *, now: datetime, skew: timedelta, name: str) -> None:
    """``value`` may lie at most ``skew`` ahead of ``now`` (the service's clock)."""
    if value > now + skew:
        raise _refuse(f"{name} is {value - now} ahead of the service's clock (at most {skew})")


def check_bucket(bucket: timedelta, *, name: str = "bucket", least: timedelta) -> None:
    """A bucket (or interval) between ``least`` and ``MAX_BUCKET``."""
    if bucket < least:
        raise _refuse(f"{name} must be at least {least}")
    if bucket > MAX_BUCKET:
        raise _refuse(f"{name} must be at most {MAX_BUCKET.days} days")


def check_buckets(start: datetime, end: datetime, bucket: timedelta, *, max_buckets: int) -> None:
    """At most ``max_buckets`` buckets of ``bucket`` in ``[start, end)``."""
    if (end - start) / bucket > max_buckets:
        raise _refuse(
            f"more than {max_buckets} buckets of {bucket} in the range;"
            " widen the bucket or shorten the range"
        )
