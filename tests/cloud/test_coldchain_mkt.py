"""MKT, segments and stability budget: published figures and boundary cases."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from cloud.coldchain.budget import spend
from cloud.coldchain.mkt import (
    DELTA_H_OVER_R,
    mkt,
    mkt_of_values,
    worst_window_mkt,
)
from cloud.coldchain.profiles import STANDARD_PROFILES
from cloud.coldchain.series import Segment, hold_segments

T0 = datetime(2026, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)


def test_delta_h_over_r_is_uspc_value() -> None:
    # USP <1079.2>: ΔH = 83.144 kJ/mol, R = 8.3144 J/(mol·K) → ΔH/R = 10,000 K.
    assert math.isclose(83_144 / 8.3144, DELTA_H_OVER_R)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # A constant history has that temperature as its MKT.
        ([25.0] * 10, 25.0),
        ([5.0], 5.0),
        # Worked by hand from Haynes' formula as USP <1079.2> states it (ΔH/R = 10,000 K):
        # 20 °C and 30 °C for equal times: factors e^-34.112 and e^-32.987, ratio 3.080,
        # ln mean = -34.112 + ln(4.080 / 2) = -33.399 → 299.41 K = 26.26 °C (mean is 25).
        ([20.0, 30.0], 26.26),
        # Six days at 5 °C and one at 15 °C: ratio e^1.248 = 3.483, ln mean = -35.952 +
        # ln(9.483 / 7) = -35.648 → 280.52 K = 7.37 °C: the week's MKT stays under 8 °C.
        ([5.0] * 6 + [15.0], 7.37),
    ],
)
def test_mkt_vectors(values: list[float], expected: float) -> None:
    assert mkt_of_values(values) == pytest.approx(expected, abs=0.005)


def test_mkt_is_above_arithmetic_mean_and_below_max() -> None:
    values = [2.0, 4.0, 8.0, 12.0]
    value = mkt_of_values(values)
    assert sum(values) / len(values) < value < max(values)


def test_time_weighting_for_uneven_sampling() -> None:
    # 3 h at 5 °C sampled once, 1 h at 15 °C sampled 60 times: weight is time, not count.
    segments = [Segment(T0, T0 + 3 * H, 5.0)] + [
        Segment(T0 + 3 * H + i * M, T0 + 3 * H + (i + 1) * M, 15.0) for i in range(60)
    ]
    result = mkt(segments)
    assert result.coverage == 4 * H
    assert result.mkt == pytest.approx(mkt_of_values([5.0, 5.0, 5.0, 15.0]), abs=1e-9)


def test_unknown_segments_carry_no_weight() -> None:
    result = mkt([Segment(T0, T0 + H, 5.0), Segment(T0 + H, T0 + 5 * H, None)])
    assert result.coverage == H
    assert result.mkt == pytest.approx(5.0)
    assert mkt([Segment(T0, T0 + H, None)]).mkt is None


def test_no_values_refused() -> None:
    with pytest.raises(ValueError, match="no readings"):
        mkt_of_values([])


def test_worst_24h_window_finds_the_hot_day() -> None:
    days = [5.0, 5.0, 12.0, 5.0]
    segments = [Segment(T0 + i * 24 * H, T0 + (i + 1) * 24 * H, v) for i, v in enumerate(days)]
    worst = worst_window_mkt(segments, timedelta(hours=24))
    assert worst == pytest.approx(12.0, abs=0.01)
    assert mkt(segments).mkt is not None
    assert mkt(segments).mkt < 12.0  # type: ignore[operator]


def test_worst_window_shorter_history_uses_all() -> None:
    segments = [Segment(T0, T0 + H, 5.0), Segment(T0 + H, T0 + 2 * H, 7.0)]
    assert worst_window_mkt(segments, timedelta(days=30)) == mkt(segments).mkt


def test_hold_segments_cap_and_start() -> None:
    samples = [(T0, 5.0), (T0 + 10 * M, 6.0), (T0 + 40 * M, 7.0)]
    segs = hold_segments(samples, start=T0 - 5 * M, end=T0 + 45 * M, max_hold=15 * M)
    assert [(s.start, s.end, s.value) for s in segs] == [
        (T0 - 5 * M, T0, None),
        (T0, T0 + 10 * M, 5.0),
        (T0 + 10 * M, T0 + 40 * M, None),  # a 30-minute gap is unknown, not 6 °C
        (T0 + 40 * M, T0 + 45 * M, 7.0),
    ]


def test_budget_is_not_reset_by_returning_to_range() -> None:
    fridge = STANDARD_PROFILES["std-refrigerated"]
    segs = [
        Segment(T0, T0 + H, 9.0),
        Segment(T0 + H, T0 + 10 * H, 5.0),
        Segment(T0 + 10 * H, T0 + 11 * H, 1.0),
    ]
    use = spend(fridge, segs, budget=3 * H)
    assert use.out_of_range == 2 * H
    assert use.remaining == H
    assert not use.exhausted
    # "Must not exceed": exactly all of the budget is still within it, a second more is not.
    assert not spend(fridge, segs, budget=2 * H).exhausted
    assert spend(fridge, segs, budget=2 * H - timedelta(seconds=1)).exhausted
    assert not spend(fridge, [Segment(T0, T0 + 12 * H, 9.0)], budget=12 * H).exhausted
    assert spend(
        fridge, [Segment(T0, T0 + 12 * H + timedelta(seconds=1), 9.0)], budget=12 * H
    ).exhausted


def test_budget_boundaries_and_freezing() -> None:
    fridge = STANDARD_PROFILES["std-refrigerated"]
    on_limits = [Segment(T0, T0 + H, 8.0), Segment(T0 + H, T0 + 2 * H, 2.0)]
    assert spend(fridge, on_limits, budget=H).out_of_range == timedelta(0)
    frozen = spend(fridge, [Segment(T0, T0 + H, -1.0)], budget=5 * H)
    assert (frozen.out_of_range, frozen.frozen) == (H, H)
    unknown = spend(fridge, [Segment(T0, T0 + H, None)], budget=H)
    assert (unknown.unknown, unknown.remaining, unknown.exhausted) == (H, timedelta(0), False)
    over = spend(fridge, [Segment(T0, T0 + 2 * H, None)], budget=H)
    assert (over.remaining, over.exhausted) == (-H, True)
