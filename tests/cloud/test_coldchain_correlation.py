"""A lot's exposure from its stays (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.coldchain.correlation import Stay, buckets, exposure, stay_segments
from cloud.coldchain.profiles import STANDARD_PROFILES
from cloud.coldchain.series import Segment

T0 = datetime(2026, 4, 1, tzinfo=UTC)
M = timedelta(minutes=1)
FRIDGE = STANDARD_PROFILES["std-refrigerated"]


def series(values: list[float], step: int = 5) -> list[tuple[datetime, float]]:
    return [(T0 + i * step * M, v) for i, v in enumerate(values)]


def test_only_readings_of_the_stay_location_and_interval_count() -> None:
    readings = {
        "fridge-a": series([5.0] * 12 + [9.0] * 12),  # a goes hot after the lot left
        "fridge-b": series([12.0] * 12 + [5.0] * 12),  # b was hot before the lot arrived
    }
    stays = [Stay("fridge-a", T0, T0 + 60 * M), Stay("fridge-b", T0 + 60 * M, None)]
    e = exposure(
        FRIDGE,
        stays,
        readings,
        budget=timedelta(hours=1),
        now=T0 + 120 * M,
        bucket=timedelta(minutes=60),
    )
    assert e.budget.out_of_range == timedelta(0)
    assert e.budget.unknown == timedelta(0)
    assert [b.max for b in e.trace] == [5.0, 5.0]
    assert e.mkt is not None
    assert abs(e.mkt - 5.0) < 1e-9


def test_time_between_stays_and_after_silence_is_unknown() -> None:
    readings = {"a": series([5.0] * 4), "b": series([5.0] * 30)}
    stays = [Stay("a", T0, T0 + 20 * M), Stay("b", T0 + 50 * M, T0 + 80 * M)]
    segs = stay_segments(stays, readings, now=T0 + 200 * M, max_hold=15 * M)
    unknown = sum((s.duration for s in segs if s.value is None), timedelta(0))
    assert unknown == 30 * M
    assert segs[0].start == T0
    assert segs[-1].end == T0 + 80 * M


def test_reading_in_force_at_arrival_covers_the_start() -> None:
    readings = {"a": [(T0 - 2 * M, 9.0), (T0 + 3 * M, 5.0)]}
    segs = stay_segments([Stay("a", T0, T0 + 10 * M)], readings, now=T0 + 10 * M, max_hold=15 * M)
    assert [(s.value, s.duration) for s in segs] == [(9.0, 3 * M), (5.0, 7 * M)]


def test_buckets_weight_by_time_and_show_gaps() -> None:
    segs = [
        Segment(T0, T0 + 30 * M, 4.0),
        Segment(T0 + 30 * M, T0 + 60 * M, 6.0),
        Segment(T0 + 60 * M, T0 + 120 * M, None),
        Segment(T0 + 120 * M, T0 + 150 * M, 5.0),
    ]
    out = buckets(segs, timedelta(hours=1))
    assert [(b.mean, b.min, b.max) for b in out] == [
        (5.0, 4.0, 6.0),
        (None, None, None),
        (5.0, 5.0, 5.0),
    ]
    assert out[2].known == 30 * M
    assert buckets([], timedelta(hours=1)) == []
