"""Cycle-count accuracy with a tolerance: exact by default, else within units or a percentage of
the book quantity (whichever allows more), per item and never netted; the API states the
tolerance it used."""

from __future__ import annotations

import pytest

from cloud.auth.model import Role
from cloud.transfers.figures import Tolerance, cycle_count_accuracy
from tests.support.figures_seed import seed_history
from tests.support.ledger_api import api
from tests.support.ledger_seed import SITE

ITEMS = [(100, 95), (100, 105), (10, 10), (3, 2)]  # off by 5, 5, 0 and 1 (33 % of 3)


@pytest.mark.parametrize(
    ("tolerance", "accurate"),
    [
        (Tolerance(), 1),  # exact: only 10/10
        (Tolerance(units=1), 2),  # and 3/2
        (Tolerance(units=5), 4),
        (Tolerance(percent=4.9), 1),  # 5 % off 100 is more than 4.9 %; 1 of 3 is 33 %
        (Tolerance(percent=5), 3),  # 5 off 100 is exactly 5 %: within, no rounding
        (Tolerance(units=1, percent=5), 4),  # whichever allows more, item by item
        (Tolerance(percent=100), 4),
    ],
)
def test_tolerance_per_item(tolerance: Tolerance, accurate: int) -> None:
    assert cycle_count_accuracy(ITEMS, tolerance=tolerance) == accurate / len(ITEMS)


def test_a_tolerance_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        Tolerance(units=-1)
    with pytest.raises(ValueError, match="tolerance"):
        Tolerance(percent=101)


@pytest.mark.integration
async def test_the_api_takes_and_states_the_tolerance(timescale_url: str) -> None:
    async with api(timescale_url) as a:
        await seed_history(timescale_url)  # items booked 100/100, counted 95/105
        url = f"/v1/sites/{SITE}/figures"
        answers = {}
        for params in ({}, {"count_tolerance_units": 4}, {"count_tolerance_percent": 5}):
            got = await a.client.get(url, params=params, headers=a.as_(Role.VIEWER))
            assert got.status_code == 200, got.text
            answers[tuple(params)] = got.json()
        assert answers[()]["cycle_count_accuracy"] == 0.0
        assert answers[()]["count_tolerance"] == {"units": 0, "percent": 0.0}
        assert answers[("count_tolerance_units",)]["cycle_count_accuracy"] == 0.0
        assert answers[("count_tolerance_percent",)]["cycle_count_accuracy"] == 1.0
        assert answers[("count_tolerance_percent",)]["count_tolerance"]["percent"] == 5.0
        for bad in ({"count_tolerance_units": -1}, {"count_tolerance_percent": 101}):
            refused = await a.client.get(url, params=bad, headers=a.as_(Role.VIEWER))
            assert refused.status_code == 422
