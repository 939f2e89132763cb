"""``Instant``: an aware datetime accepted from the outside, normalised to UTC, within range.

Converting an aware datetime near ``datetime.min`` or ``max`` to UTC overflows (an
``OverflowError``, which validation would not turn into a 422); business times of this service
lie between 1970 and 9999, so anything outside is refused as a validation error.

>>> from pydantic import TypeAdapter
>>> TypeAdapter(Instant).validate_python("2026-03-01T09:00:00+01:00").isoformat()
'2026-03-01T08:00:00+00:00'
>>> TypeAdapter(Instant).validate_python("0001-01-01T00:00:00+01:00")
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for function-after[...]
...
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError as err:
        raise ValueError("time out of range") from err
    if not EARLIEST <= utc <= LATEST:
        raise ValueError(f"time must lie between {EARLIEST.year} and {LATEST.year}")
    return utc


Instant = Annotated[AwareDatetime, AfterValidator(_in_range)]
