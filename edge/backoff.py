"""Jittered exponential backoff, the one schedule every edge retry loop follows.

Reconnecting sources, the uplink and the supervisor's restarts all wait
``uniform(delay / 2, delay)`` with ``delay = min(maximum, initial * 2**attempt)``: exponential so a
dead peer is not hammered, capped so recovery is noticed soon, and jittered ("equal jitter",
never below half the delay) so a fleet of gateways does not retry in lockstep after an outage.
"""

from __future__ import annotations

import random
from datetime import timedelta


def backoff_delay(
    attempt: int, initial: timedelta, maximum: timedelta, rng: random.Random
) -> float:
    """Seconds to wait before retry ``attempt`` (0 for the first retry).

    >>> rng = random.Random(1)
    >>> 4 <= backoff_delay(3, timedelta(seconds=1), timedelta(seconds=60), rng) <= 8
    True
    >>> 30 <= backoff_delay(50, timedelta(seconds=1), timedelta(seconds=60), rng) <= 60
    True
    """
    delay = min(maximum.total_seconds(), initial.total_seconds() * 2.0 ** min(max(attempt, 0), 32))
    return rng.uniform(delay / 2, delay)
