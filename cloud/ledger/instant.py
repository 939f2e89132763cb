"""``Instant``: an aware datetime accepted from the outside, normalised to UTC, within range.

The same rule as the wire format's ``UtcDatetime`` (1970 to 9999; an out-of-range or overflowing
time is a validation error, never a 500).

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

from protocols.records import UtcDatetime

Instant = UtcDatetime
