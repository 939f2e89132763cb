"""Readings as a step function of time: each reading holds until the next one.

Uneven sampling is the norm (loggers batch, radios drop frames), so every time-weighted figure
(MKT, time out of range, the exposure trace) is computed from segments: a reading at ``t_i``
stands for ``[t_i, t_{i+1})``. A gap longer than ``max_hold`` (the profile's silence) is not
filled: it becomes an *unknown* segment, because silence never reads as in range.

>>> from datetime import datetime, timedelta, UTC
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> segs = hold_segments([(t0, 5.0), (t0 + timedelta(minutes=5), 6.0)],
...                      end=t0 + timedelta(minutes=60), max_hold=timedelta(minutes=15))
>>> [(s.duration.total_seconds() / 60, s.value) for s in segs]
[(5.0, 5.0), (55.0, None)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Segment:
    """``[start, end)`` at ``value`` °C, or unknown when ``value`` is None."""

    start: datetime
    end: datetime
    value: float | None

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def hold_segments(
    samples: Sequence[tuple[datetime, float]],
    *,
    end: datetime,
    max_hold: timedelta,
    start: datetime | None = None,
) -> list[Segment]:
    """Segments covering ``[start, end)`` from time-ordered samples (see the module docstring).

    Time before the first sample (from ``start``) is unknown; samples outside the interval only
    contribute the part of their hold that falls inside it.
    """
    begin = start if start is not None else (samples[0][0] if samples else end)
    out: list[Segment] = []
    cursor = begin
    for i, (t, value) in enumerate(samples):
        nxt = samples[i + 1][0] if i + 1 < len(samples) else end
        if nxt <= begin or t >= end:
            continue
        held: float | None = value if nxt - t <= max_hold else None
        seg_start, seg_end = max(t, begin), min(nxt, end)
        if seg_start > cursor:
            out.append(Segment(cursor, seg_start, None))
        if seg_end > seg_start:
            out.append(Segment(seg_start, seg_end, held))
        cursor = max(cursor, seg_end)
    if cursor < end:
        out.append(Segment(cursor, end, None))
    return _merge(out)


def _merge(segments: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for seg in segments:
        if merged and merged[-1].value is None and seg.value is None:
            merged[-1] = Segment(merged[-1].start, seg.end, None)
        else:
            merged.append(seg)
    return merged
