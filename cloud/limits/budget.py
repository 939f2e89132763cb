"""One budget for the bytes of all request bodies in flight (pure, single event loop).

Each request gets a ``Lease``; every part of its body, and anything derived from it that stays
in memory while the request runs (ingest's inflated batch), is taken from the shared budget and
given back, all at once, when the request ends. Taking never waits: a full budget answers 503
with Retry-After at once, so a flood of large bodies costs the flood, not the process.

>>> budget = ByteBudget(100, retry_after=5)
>>> a, b = budget.lease(), budget.lease()
>>> a.take(60); b.take(30); budget.used
90
>>> b.take(20)
Traceback (most recent call last):
...
cloud.limits.BudgetExhaustedError: 503: too many request bytes in flight; retry later
>>> a.close(); budget.used
30
"""

from __future__ import annotations

from cloud.limits import BudgetExhaustedError


class ByteBudget:
    def __init__(self, capacity: int, *, retry_after: int) -> None:
        self.capacity = capacity
        self.retry_after = retry_after
        self.used = 0
        self.refused = 0
        """How many takes were refused since start (a figure for operators)."""

    def lease(self) -> Lease:
        return Lease(self)

    def _take(self, size: int) -> None:
        if self.used + size > self.capacity:
            self.refused += 1
            raise BudgetExhaustedError(
                "too many request bytes in flight; retry later", self.retry_after
            )
        self.used += size

    def _give(self, size: int) -> None:
        self.used -= size


class Lease:
    """What one request holds of the budget."""

    def __init__(self, budget: ByteBudget) -> None:
        self._budget = budget
        self.held = 0

    def take(self, size: int) -> None:
        """Takes ``size`` more bytes or raises ``BudgetExhaustedError`` (taking nothing)."""
        self._budget._take(size)
        self.held += size

    def close(self) -> None:
        self._budget._give(self.held)
        self.held = 0
