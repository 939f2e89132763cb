"""The stability budget is exhausted only when it is exceeded (issue 12.8): labels say the time
out of range "must not exceed" it, so spending exactly all of it is still within it.

Checked on the domain core (12 h out of a 12 h budget) and through ``GET /v1/lots/{id}/exposure``
on real readings, where a lot spends exactly its 2 h budget, or a minute more.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.coldchain.budget import spend
from cloud.coldchain.profiles import STANDARD_PROFILES
from cloud.coldchain.series import Segment
from tests.cloud.test_exposure_api import headers
from tests.support.cloud_ingest import app_client
from tests.support.coldchain_seed import FRIDGE_A, FRIDGE_B, SENSOR, T0, Site, readings

FRIDGE = STANDARD_PROFILES["std-refrigerated"]
START = datetime(2026, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)
S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("warm", "unknown", "exhausted"),
    [
        (12 * H, timedelta(0), False),  # exactly the budget, out of range
        (11 * H, H, False),  # exactly the budget, unknown time counted too
        (12 * H - S, timedelta(0), False),
        (12 * H + S, timedelta(0), True),
        (12 * H, S, True),
    ],
)
def test_exactly_twelve_hours_of_a_twelve_hour_budget_is_within_it(
    warm: timedelta, unknown: timedelta, exhausted: bool
) -> None:
    segments = [Segment(START, START + warm, 9.0)]
    if unknown:
        segments.append(Segment(START + warm, START + warm + unknown, None))
    segments.append(Segment(START + warm + unknown, START + warm + unknown + H, 5.0))
    use = spend(FRIDGE, segments, budget=12 * H)
    assert use.out_of_range + use.unknown == warm + unknown
    assert use.remaining == 12 * H - warm - unknown
    assert use.exhausted is exhausted


@pytest.mark.integration
async def test_the_exposure_api_says_exhausted_only_past_the_budget(site: Site) -> None:
    """Vaccine lots carry a 2 h budget and spent 2 minutes unmonitored at the dock: fridge B is
    out of range for 118 minutes (exactly the budget), fridge A for 119 (a minute over)."""
    b = [9.0] * 118 + [5.0] * 30
    a = [9.0] * 119 + [5.0] * 29
    await site.send(
        sorted(readings(SENSOR[FRIDGE_B], T0, b) + readings(SENSOR[FRIDGE_A], T0, a),
               key=lambda r: r.time)
    )  # fmt: skip
    viewer = await headers(site.url)
    at = {"at": (T0 + 147 * timedelta(minutes=1)).isoformat(), "bucket": "PT1H"}
    async with app_client(site.url) as client:
        within = await client.get(f"/v1/lots/{site.lots['b1']}/exposure", params=at, headers=viewer)
        over = await client.get(f"/v1/lots/{site.lots['a1']}/exposure", params=at, headers=viewer)
    assert within.status_code == 200, within.text
    assert over.status_code == 200, over.text
    assert (within.json()["time_out_of_range"], within.json()["time_unknown"]) == (
        "PT1H58M",
        "PT2M",
    )
    assert (within.json()["budget_left"], within.json()["budget_exhausted"]) == ("PT0S", False)
    assert over.json()["time_out_of_range"] == "PT1H59M"
    assert over.json()["budget_exhausted"] is True
