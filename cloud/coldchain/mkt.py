"""Mean kinetic temperature (MKT), after Haynes and USP <1079.2>.

MKT is the single temperature that would degrade a product as much as the observed history,
assuming Arrhenius kinetics with ΔH = 83.144 kJ/mol, i.e. ΔH/R = 10,000 K::

    T_mkt = (ΔH/R) / -ln( Σ w_i · exp(-(ΔH/R) / T_i) / Σ w_i )      (kelvin)

with ``w_i`` the time each reading stands for (time-weighted, for uneven sampling; see
``series``). Unknown segments carry no weight; ``coverage`` says how much time was known.
USP <1079.2> windows: 24 h for controlled cold (2–8 °C) products, 30 days rolling for controlled
room temperature; ``worst_window_mkt`` gives the highest MKT over any such window.

>>> round(mkt_of_values([25.0, 25.0]), 6)
25.0
>>> round(mkt_of_values([20.0, 30.0]), 2)  # warmer readings weigh more than the mean
26.26
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cloud.coldchain.series import Segment

DELTA_H_OVER_R = 10_000.0
"""ΔH/R in kelvin: 83.144 kJ/mol divided by R = 8.3144 J/(mol·K)."""
KELVIN = 273.15


def _arrhenius(celsius: float) -> float:
    return math.exp(-DELTA_H_OVER_R / (celsius + KELVIN))


def _from_mean_factor(mean_factor: float) -> float:
    return DELTA_H_OVER_R / -math.log(mean_factor) - KELVIN


def mkt_of_values(values: Sequence[float]) -> float:
    """MKT of equally spaced readings (°C).

    >>> round(mkt_of_values([2.0, 8.0, 15.0]), 2)
    9.95
    """
    if not values:
        raise ValueError("MKT of no readings")
    return _from_mean_factor(sum(_arrhenius(v) for v in values) / len(values))


@dataclass(frozen=True)
class MktResult:
    """MKT in °C over the known part of an interval, and how long that known part was."""

    mkt: float | None
    coverage: timedelta


def mkt(segments: Sequence[Segment]) -> MktResult:
    """Time-weighted MKT of ``segments``; None when no segment is known.

    >>> from datetime import datetime, UTC
    >>> from cloud.coldchain.series import Segment
    >>> t = [datetime(2026, 1, 1, h, tzinfo=UTC) for h in (0, 3, 4)]
    >>> r = mkt([Segment(t[0], t[1], 5.0), Segment(t[1], t[2], 5.0)])
    >>> (round(r.mkt, 6), r.coverage)
    (5.0, datetime.timedelta(seconds=14400))
    """
    weight = 0.0
    total = 0.0
    for seg in segments:
        if seg.value is None:
            continue
        w = seg.duration.total_seconds()
        weight += w
        total += w * _arrhenius(seg.value)
    if weight <= 0:
        return MktResult(None, timedelta(0))
    return MktResult(_from_mean_factor(total / weight), timedelta(seconds=weight))


def worst_window_mkt(
    segments: Sequence[Segment], window: timedelta, *, steps: int = 288
) -> float | None:
    """The highest MKT over any ``window`` inside ``segments`` (rolling, ``window/steps`` grid).

    When the segments span less than one window, the MKT of all of them is returned.
    """
    known = [s for s in segments if s.value is not None and s.end > s.start]
    if not known:
        return None
    start, end = known[0].start, known[-1].end
    if end - start <= window:
        return mkt(known).mkt
    step = window / steps
    cells = math.ceil((end - start) / step)
    weight = [0.0] * cells
    factor = [0.0] * cells
    for seg in known:
        _spread(seg, start, step, weight, factor)
    best: float | None = None
    w_sum = f_sum = 0.0
    for i in range(cells):
        w_sum += weight[i]
        f_sum += factor[i]
        if i >= steps:
            w_sum -= weight[i - steps]
            f_sum -= factor[i - steps]
        if i >= steps - 1 and w_sum > 0:
            value = _from_mean_factor(f_sum / w_sum)
            best = value if best is None else max(best, value)
    return best


def _spread(
    seg: Segment, origin: datetime, step: timedelta, weight: list[float], factor: list[float]
) -> None:
    """Adds a segment's weight and Arrhenius factor to the grid cells it overlaps."""
    assert seg.value is not None
    f = _arrhenius(seg.value)
    cursor = seg.start
    while cursor < seg.end:
        index = int((cursor - origin) / step)
        cell_end = origin + step * (index + 1)
        part_end = min(cell_end, seg.end)
        w = (part_end - cursor).total_seconds()
        index = min(index, len(weight) - 1)
        weight[index] += w
        factor[index] += w * f
        cursor = part_end
