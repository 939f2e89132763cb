"""Judging a shipment's transit from its loggers' readings. Pure.

The transit runs from dispatch to receipt. Each logger's readings are run through the same
excursion state machine as a fridge's sensor (profile limits, on-delay, freezing at once); an
*action*-level excursion on any logger condemns the shipment: its lots are quarantined at
receipt (at once, for a live tracker). Time that no logger covers (before the first reading,
after the last, or a gap longer than the profile's ``silence_after``) is *unknown*, never in
range; with no logger at all the whole transit is unknown.

>>> from datetime import datetime, timedelta, UTC
>>> from cloud.coldchain.profiles import STANDARD_PROFILES
>>> p = STANDARD_PROFILES["std-refrigerated"]
>>> t0, m = datetime(2026, 3, 1, tzinfo=UTC), timedelta(minutes=1)
>>> warm = [(t0 + 5 * i * m, 5.0 if i < 6 else 12.0) for i in range(12)]
>>> j = judge(p, {"tt-1": warm}, start=t0, end=t0 + 80 * m)  # last reading at 55 min
>>> [(e.sensor_id, e.level, e.started_at - t0) for e in j.action], j.unknown
([('tt-1', 'action', datetime.timedelta(seconds=1800))], datetime.timedelta(seconds=1500))
>>> judge(p, {}, start=t0, end=t0 + 60 * m).unknown
datetime.timedelta(seconds=3600)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cloud.coldchain.excursions import ExcursionEvent, SensorState, run
from cloud.coldchain.profiles import StorageProfile
from cloud.coldchain.series import Segment, hold_segments


@dataclass(frozen=True)
class TransitExcursion:
    sensor_id: str
    kind: str
    level: str
    started_at: datetime
    ended_at: datetime | None
    peak_value: float | None
    freeze: bool


@dataclass(frozen=True)
class TransitJudgement:
    excursions: tuple[TransitExcursion, ...]
    covered: timedelta  # time at least one logger covers
    unknown: timedelta  # time no logger covers
    out_of_range: timedelta  # covered time outside the action limits (worst logger)

    @property
    def action(self) -> tuple[TransitExcursion, ...]:
        return tuple(e for e in self.excursions if e.level == "action")


def _excursions(sensor: str, events: Sequence[ExcursionEvent]) -> list[TransitExcursion]:
    found: dict[tuple[str, datetime], TransitExcursion] = {}
    for e in events:
        if e.kind == "no_data":
            continue  # silence is reported as unknown time, not as an excursion
        prev = found.get((e.kind, e.started_at))
        level = "action" if e.level == "action" or (prev and prev.level == "action") else e.level
        found[e.kind, e.started_at] = TransitExcursion(
            sensor, e.kind, level, e.started_at,
            e.ended_at if e.action == "close" else None,
            e.peak_value if e.peak_value is not None else (prev.peak_value if prev else None),
            e.freeze or bool(prev and prev.freeze),
        )  # fmt: skip
    return list(found.values())


def _union_known(per_sensor: Sequence[Sequence[Segment]]) -> timedelta:
    spans = sorted((s.start, s.end) for segs in per_sensor for s in segs if s.value is not None)
    total = timedelta(0)
    cur_start: datetime | None = None
    cur_end: datetime | None = None
    for a, b in spans:
        if cur_end is None or a > cur_end:
            if cur_start is not None and cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = a, b
        else:
            cur_end = max(cur_end, b)
    if cur_start is not None and cur_end is not None:
        total += cur_end - cur_start
    return total


def judge(
    profile: StorageProfile,
    readings: Mapping[str, Sequence[tuple[datetime, float]]],
    *,
    start: datetime,
    end: datetime,
) -> TransitJudgement:
    """Excursions and coverage of the transit ``[start, end)`` (see the module docstring)."""
    found: list[TransitExcursion] = []
    segments: list[list[Segment]] = []
    worst = timedelta(0)
    for sensor, samples in sorted(readings.items()):
        inside = sorted(s for s in samples if start <= s[0] < end)
        _, events = run(profile, SensorState(), inside)
        found += _excursions(sensor, events)
        segs = hold_segments(inside, start=start, end=end, max_hold=profile.silence_after)
        segments.append(segs)
        out = sum(
            (s.duration for s in segs if s.value is not None and not profile.in_range(s.value)),
            timedelta(0),
        )
        worst = max(worst, out)
    covered = _union_known(segments)
    found.sort(key=lambda e: (e.started_at, e.sensor_id, e.kind))
    return TransitJudgement(tuple(found), covered, (end - start) - covered, worst)
