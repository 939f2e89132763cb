"""Inventory figures and replenishment, pure: the arithmetic over numbers the store gathers.

**Cycle-count accuracy** is counted per item (a lot at a location in one count), never netted:
an item is accurate when its count equals its book quantity, or is within the ``Tolerance``
(units, or a percentage of the book quantity, whichever allows more; exact by default). Two
items booked 100 and 100 and counted 95 and 105 are 0 % accurate, though the totals agree.

**Reorder point and safety stock** (per product and site) from the daily consumption history
``d`` (one value per day, days without consumption included as 0) and the replenishment lead
time ``L`` in days, for a cycle service level ``p`` (z = Φ⁻¹(p)), assuming independent daily
demand and a fixed lead time::

    safety stock  SS  = z · σ_d · √L
    reorder point ROP = d̄ · L + SS

>>> cycle_count_accuracy([(100, 95), (100, 105)])
0.0
>>> r = reorder_point([10, 12, 8, 10, 10, 12, 8], lead_time_days=4, service_level=0.95)
>>> [round(v, 2) for v in (r.mean_daily, r.sd_daily, r.safety_stock, r.reorder_point)]
[10.0, 1.63, 5.37, 45.37]
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    """How far an item's count may be from its book quantity and still be accurate: ``units``,
    or ``percent`` of the book quantity, whichever allows more. ``Tolerance()`` is exact.

    >>> Tolerance(percent=5).allows(100, 105), Tolerance(percent=4).allows(100, 105)
    (True, False)
    >>> Tolerance(units=2).allows(3, 1), Tolerance().allows(3, 2)
    (True, False)
    """

    units: int = 0
    percent: float = 0.0

    def __post_init__(self) -> None:
        if self.units < 0 or not 0 <= self.percent <= 100:
            raise ValueError("tolerance: units >= 0 and percent in [0, 100]")

    def allows(self, booked: int, counted: int) -> bool:
        off = abs(counted - booked)
        # compared as off x 100 <= percent x booked: no rounding at the boundary (5 % of 100)
        return off <= self.units or off * 100 <= self.percent * booked


def cycle_count_accuracy(
    items: Sequence[tuple[int, int]], *, tolerance: int | Tolerance = 0
) -> float | None:
    """Share of (booked, counted) items whose count is within ``tolerance`` (units, or a
    ``Tolerance``) of the book."""
    if not items:
        return None
    allowed = tolerance if isinstance(tolerance, Tolerance) else Tolerance(units=tolerance)
    good = sum(1 for booked, counted in items if allowed.allows(booked, counted))
    return good / len(items)


def days_of_supply(on_hand: float, mean_daily_use: float) -> float | None:
    """How many days the stock lasts at the mean daily use (None: nothing is used).

    >>> days_of_supply(30, 2.5)
    12.0
    """
    return None if mean_daily_use <= 0 else on_hand / mean_daily_use


def turnover_days(average_on_hand: float, used: float, period_days: float) -> float | None:
    """Inventory turnover in days: the period divided by turns (used / average stock).

    >>> turnover_days(average_on_hand=50, used=300, period_days=30)
    5.0
    """
    if used <= 0 or period_days <= 0:
        return None
    return period_days / (used / average_on_hand) if average_on_hand > 0 else 0.0


@dataclass(frozen=True)
class Reorder:
    mean_daily: float
    sd_daily: float
    lead_time_days: float
    z: float
    safety_stock: float
    reorder_point: float


def reorder_point(
    daily_use: Sequence[float], *, lead_time_days: float, service_level: float
) -> Reorder:
    """ROP and safety stock (see the module docstring); ``daily_use`` needs two days or more."""
    if len(daily_use) < 2:
        raise ValueError("at least two days of consumption history are needed")
    if not 0.5 <= service_level < 1:
        raise ValueError("service level must be in [0.5, 1)")
    if lead_time_days <= 0:
        raise ValueError("lead time must be positive")
    mean = statistics.fmean(daily_use)
    sd = statistics.stdev(daily_use)
    z = statistics.NormalDist().inv_cdf(service_level)
    safety = z * sd * math.sqrt(lead_time_days)
    return Reorder(mean, sd, lead_time_days, z, safety, mean * lead_time_days + safety)
