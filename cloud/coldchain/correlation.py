"""Correlation: a lot's temperature exposure from where the ledger says it was.

A reading at sensor S and time t concerns every lot held at S's location at t. A lot's exposure
is therefore the readings of each location it stayed in, clipped to that stay, joined in time
order: the trace, its MKT (whole life and worst USP window), the time out of range and unknown,
and the stability budget left. Time between stays (in transit, not tracked) is unknown.

>>> from datetime import datetime, timedelta, UTC
>>> from cloud.coldchain.profiles import STANDARD_PROFILES
>>> t0, m = datetime(2026, 1, 1, tzinfo=UTC), timedelta(minutes=1)
>>> stays = [Stay("fridge-a", t0, t0 + 60 * m)]
>>> readings = {"fridge-a": [(t0 + i * m, 5.0 if i < 40 else 9.0) for i in range(0, 70, 5)]}
>>> e = exposure(STANDARD_PROFILES["std-refrigerated"], stays, readings, budget=timedelta(hours=2),
...              now=t0 + 90 * m, bucket=timedelta(minutes=30))
>>> (e.budget.out_of_range, [b.max for b in e.trace])
(datetime.timedelta(seconds=1200), [5.0, 9.0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cloud.coldchain.budget import BudgetUse, spend
from cloud.coldchain.mkt import mkt, worst_window_mkt
from cloud.coldchain.profiles import StorageProfile
from cloud.coldchain.series import Segment, hold_segments

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Stay:
    """The lot was at ``location_id`` from ``start`` until ``end`` (None: still there)."""

    location_id: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class Bucket:
    """Time-weighted mean, minimum and maximum over ``[start, start + bucket)`` (known part)."""

    start: datetime
    mean: float | None
    min: float | None
    max: float | None
    known: timedelta


@dataclass(frozen=True)
class Exposure:
    segments: list[Segment]
    trace: list[Bucket]
    mkt: float | None
    worst_window_mkt: float | None
    budget: BudgetUse


def stay_segments(
    stays: Sequence[Stay],
    readings: Mapping[str, Sequence[tuple[datetime, float]]],
    *,
    now: datetime,
    max_hold: timedelta,
) -> list[Segment]:
    """Segments over the lot's stays; a stay's own readings only, clipped to the stay."""
    out: list[Segment] = []
    for stay in sorted(stays, key=lambda s: s.start):
        end = min(stay.end or now, now)
        if end <= stay.start:
            continue
        samples = readings.get(stay.location_id, [])
        # The reading in force when the lot arrived stands for the start of the stay.
        before = [s for s in samples if s[0] <= stay.start][-1:]
        inside = [s for s in samples if stay.start < s[0] < end]
        if out and out[-1].end < stay.start:
            out.append(Segment(out[-1].end, stay.start, None))  # untracked between stays
        out.extend(hold_segments(before + inside, start=stay.start, end=end, max_hold=max_hold))
    return out


def buckets(segments: Sequence[Segment], width: timedelta) -> list[Bucket]:
    """The trace in buckets of ``width`` aligned on the Unix epoch (like ``time_bucket``)."""
    if not segments:
        return []
    origin = _EPOCH + width * ((segments[0].start - _EPOCH) // width)
    acc: dict[int, list[tuple[float, float]]] = {}
    for seg in segments:
        if seg.value is None:
            continue
        cursor = seg.start
        while cursor < seg.end:
            index = int((cursor - origin) / width)
            part_end = min(origin + width * (index + 1), seg.end)
            acc.setdefault(index, []).append(((part_end - cursor).total_seconds(), seg.value))
            cursor = part_end
    count = int((segments[-1].end - origin) / width) + 1
    out: list[Bucket] = []
    for index in range(count):
        start = origin + width * index
        parts = acc.get(index)
        if start >= segments[-1].end:
            break
        if not parts:
            out.append(Bucket(start, None, None, None, timedelta(0)))
            continue
        weight = sum(w for w, _ in parts)
        mean = sum(w * v for w, v in parts) / weight if weight else None
        values = [v for _, v in parts]
        out.append(Bucket(start, mean, min(values), max(values), timedelta(seconds=weight)))
    return out


def exposure(
    profile: StorageProfile,
    stays: Sequence[Stay],
    readings: Mapping[str, Sequence[tuple[datetime, float]]],
    *,
    budget: timedelta,
    now: datetime,
    bucket: timedelta,
) -> Exposure:
    """A lot's exposure under its product's ``profile`` (see the module docstring)."""
    segments = stay_segments(stays, readings, now=now, max_hold=profile.silence_after)
    return Exposure(
        segments=segments,
        trace=buckets(segments, bucket),
        mkt=mkt(segments).mkt,
        worst_window_mkt=worst_window_mkt(segments, profile.mkt_window),
        budget=spend(profile, segments, budget=budget),
    )
