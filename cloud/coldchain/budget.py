"""Time out of range and the stability budget a product has left.

A product's stability budget is the cumulative time out of its labelled (action) range it
tolerates over its whole life. Every minute out of range is spent for good: a return to range
does not give it back. Unknown time (silence longer than the profile allows) is spent too,
because nobody can show the product was in range then.

>>> from datetime import datetime, timedelta, UTC
>>> from cloud.coldchain.profiles import STANDARD_PROFILES
>>> from cloud.coldchain.series import Segment
>>> t = datetime(2026, 1, 1, tzinfo=UTC)
>>> m = timedelta(minutes=1)
>>> segs = [Segment(t, t + 30 * m, 5.0), Segment(t + 30 * m, t + 50 * m, 9.0),
...         Segment(t + 50 * m, t + 60 * m, None)]
>>> b = spend(STANDARD_PROFILES["std-refrigerated"], segs, budget=timedelta(hours=1))
>>> [int(d.total_seconds() // 60) for d in (b.out_of_range, b.unknown, b.remaining)]
[20, 10, 30]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from cloud.coldchain.profiles import StorageProfile
from cloud.coldchain.series import Segment


@dataclass(frozen=True)
class BudgetUse:
    """Time spent out of range, time unknown, and what is left of the budget (may go negative)."""

    out_of_range: timedelta
    unknown: timedelta
    frozen: timedelta
    budget: timedelta
    remaining: timedelta

    @property
    def exhausted(self) -> bool:
        """True once more than the budget is spent.

        Labels say the time out of range "must not exceed" the budget, so spending exactly all
        of it is still within it (12 h of a 12 h budget is not exhausted; 12 h and 1 s is).

        >>> h = timedelta(hours=12)
        >>> z = timedelta(0)
        >>> BudgetUse(h, z, z, h, z).exhausted
        False
        >>> BudgetUse(h, timedelta(seconds=1), z, h, timedelta(seconds=-1)).exhausted
        True
        """
        return self.remaining < timedelta(0) and self.budget >= timedelta(0)


def spend(profile: StorageProfile, segments: Sequence[Segment], *, budget: timedelta) -> BudgetUse:
    """What ``segments`` spent of ``budget`` under ``profile`` (see the module docstring)."""
    out = unknown = frozen = timedelta(0)
    for seg in segments:
        if seg.value is None:
            unknown += seg.duration
        elif not profile.in_range(seg.value):
            out += seg.duration
            if profile.frozen(seg.value):
                frozen += seg.duration
    return BudgetUse(
        out_of_range=out,
        unknown=unknown,
        frozen=frozen,
        budget=budget,
        remaining=budget - out - unknown,
    )
