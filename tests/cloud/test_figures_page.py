"""The inventory figures page (/ui/figures) on a seeded history whose figures are worked out by
hand below: behind the session, one site at a time, the same numbers as the API."""

from __future__ import annotations

import re

import pytest

from cloud.auth.model import Role
from tests.support.figures_seed import seed_history
from tests.support.ledger_api import Api, api
from tests.support.ledger_seed import SITE

pytestmark = pytest.mark.integration


async def sign_in(a: Api, role: Role) -> None:
    signed = await a.client.post("/ui/login", data={"token": a.tokens[role]})
    assert signed.status_code in {200, 303}, signed.text


def tile(page: str, label: str) -> str:
    found = re.search(rf"<div class='label'>{label}</div><div class='value'>([^<]*)</div>", page)
    assert found, label
    return found.group(1)


async def test_a_viewer_sees_the_sites_figures_worked_out_by_hand(timescale_url: str) -> None:
    async with api(timescale_url) as a:
        await seed_history(timescale_url)
        assert (await a.client.get("/ui/figures")).status_code == 303  # not signed in
        await sign_in(a, Role.VIEWER)
        page = (await a.client.get("/ui/figures", params={"site": SITE, "days": 7})).text
        # two items, 100/95 and 100/105: neither is right, so 0 % (netted it would be 100 %)
        assert tile(page, "Cycle-count accuracy") == "0%"
        assert "2 items counted" in page
        assert tile(page, "On-time receipts") == "50%"  # 1 of 2 ASNs due
        assert tile(page, "Stock-out rate") == "0%"  # A never ran out; B never moved here
        assert tile(page, "Units in transit") == "5"
        assert "5 leaving, 0 coming" in page
        assert tile(page, "Site lead time") == "7.0 d"  # no transfer received: the default
        assert tile(page, "Below reorder point") == "1"
        row = re.search(r"<tr><td>Vaccine A.*?</tr>", page)
        assert row, page
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0))
        # on hand 100 - 70 - 5 = 25; mean use 70 / 7 = 10 a day -> 2.5 days of supply;
        # end-of-day stock 90 78 70 60 50 38 25, mean 411/7 = 58.71 -> turnover 7 / (70 /
        # 58.71) = 5.87 days; sd of USE = 1.633, z(95 %) = 1.6449, L = 7:
        # SS = 1.6449 x 1.633 x sqrt(7) = 7.11, ROP = 10 x 7 + 7.11 = 77.11
        assert cells[1:] == [
            "25 <span class='bad'>reorder</span>", "70 (10.0)", "2.5", "5.9", "0", "7.0", "7", "77"
        ]  # fmt: skip
        api_figures = await a.client.get(
            f"/v1/sites/{SITE}/figures", params={"days": 7}, headers=a.as_(Role.VIEWER)
        )
        [product] = api_figures.json()["products"]
        assert round(product["reorder"]["reorder_point"]) == 77


async def test_unknown_site_and_bad_parameters_are_refused(timescale_url: str) -> None:
    async with api(timescale_url) as a:
        await sign_in(a, Role.OPERATOR)
        assert "href='/ui/figures'" in (await a.client.get("/ui")).text  # in the navigation
        first = await a.client.get("/ui/figures")
        assert first.status_code == 200
        assert "Site one" in first.text
        assert "No stock has moved at this site yet." in first.text
        assert (await a.client.get("/ui/figures", params={"site": "nowhere"})).status_code == 404
        assert (await a.client.get("/ui/figures", params={"days": 1})).status_code == 422
        assert (await a.client.get("/ui/figures", params={"site": "a b"})).status_code == 422
