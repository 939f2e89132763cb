"""Lead times per site and product: set by an administrator (audited), else measured from the
product's received transfers, else the site's, else 7 days; a lead time in the request overrides
all. Reorder points on the hand-worked history of tests/support/figures_seed.py: daily use
10, 12, 8, 10, 10, 12, 8 (mean 10, sd 1.633), z(95 %) = 1.6449:

    L = 3: SS = 1.6449 x 1.633 x sqrt(3) = 4.65, ROP = 30 + 4.65 = 34.65
    L = 4: SS = 5.37, ROP = 45.37
    L = 2: SS = 3.80, ROP = 23.80
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from cloud.auth.model import Role
from cloud.transfers.store import LineIn, TransferIn, create_transfer
from tests.support.figures_seed import seed_history
from tests.support.ledger_api import Api, api
from tests.support.ledger_seed import GTIN_A, SITE

pytestmark = pytest.mark.integration

LEAD = f"/v1/sites/{SITE}/lead-times/{GTIN_A}"


async def received_transfer(url: str, ordered_days_ago: int, received_days_ago: int) -> None:
    """A transfer of product A from a second site, received 3 days after it was ordered."""
    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("INSERT INTO sites (site_id, name) VALUES ('site-2', 'Site two')")
        order = TransferIn(reference="T-IN", from_site="site-2", to_site=SITE,
                           lines=[LineIn(gtin=GTIN_A, quantity=1)])  # fmt: skip
        transfer_id = await create_transfer(conn, order)
        await conn.execute(
            "UPDATE transfers SET status = 'received', created_at = %s, received_at = %s"
            " WHERE transfer_id = %s",
            (now - timedelta(days=ordered_days_ago), now - timedelta(days=received_days_ago),
             transfer_id),
        )  # fmt: skip
        await conn.commit()


async def product_a(a: Api, **params: Any) -> dict[str, Any]:
    got = await a.client.get(
        f"/v1/sites/{SITE}/figures", params={"days": 7, **params}, headers=a.as_(Role.VIEWER)
    )
    assert got.status_code == 200, got.text
    [product] = got.json()["products"]
    assert isinstance(product, dict)
    return product


def reorder(product: dict[str, Any]) -> tuple[float, str, float, float]:
    r = product["reorder"]
    return (round(product["lead_time_days"], 3), product["lead_time_source"],
            round(r["safety_stock"], 2), round(r["reorder_point"], 2))  # fmt: skip


async def test_set_measured_given_and_cleared_lead_times(timescale_url: str) -> None:
    async with api(timescale_url) as a:
        await seed_history(timescale_url)
        await received_transfer(timescale_url, ordered_days_ago=5, received_days_ago=2)
        measured = "measured from this product's received transfers"
        assert reorder(await product_a(a)) == (3.0, measured, 4.65, 34.65)

        refused = await a.client.put(LEAD, json={"lead_time_days": 4}, headers=a.as_(Role.QA))
        assert refused.status_code == 403
        put = await a.client.put(
            LEAD, json={"lead_time_days": 4},
            headers={**a.as_(Role.ADMIN), "X-Coldtrace-Reason": "supplier contract"},
        )  # fmt: skip
        assert put.status_code == 200, put.text
        assert (put.json()["lead_time_days"], put.json()["set_by"]) == (4.0, "admin-1")
        assert reorder(await product_a(a)) == (4.0, "set for this product and site", 5.37, 45.37)
        assert reorder(await product_a(a, lead_time_days=2)) == (2.0, "given", 3.8, 23.8)
        listed = await a.client.get(f"/v1/sites/{SITE}/lead-times", headers=a.as_(Role.VIEWER))
        assert [(x["gtin"], x["lead_time_days"]) for x in listed.json()] == [(GTIN_A, 4.0)]

        gone = await a.client.delete(LEAD, headers=a.as_(Role.ADMIN))
        assert gone.status_code == 204
        assert reorder(await product_a(a)) == (3.0, measured, 4.65, 34.65)
        again = await a.client.delete(LEAD, headers=a.as_(Role.ADMIN))
        assert again.status_code == 404

    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute(
            "SELECT action, reason, detail FROM audit_log WHERE action LIKE 'lead_time.%'"
            " ORDER BY at"
        )
        assert await cur.fetchall() == [
            ("lead_time.put", "supplier contract", {"before": None, "after": 4.0}),
            ("lead_time.delete", "replenishment lead time cleared",
             {"before": 4.0, "after": None}),
        ]  # fmt: skip


async def test_bad_lead_times_are_refused(timescale_url: str) -> None:
    async with api(timescale_url) as a:
        admin = a.as_(Role.ADMIN)
        for body in ({"lead_time_days": 0}, {"lead_time_days": 366}, {"days": 3}):
            assert (await a.client.put(LEAD, json=body, headers=admin)).status_code == 422
        ok = {"lead_time_days": 1.5}
        unknown = f"/v1/sites/{SITE}/lead-times/00000000000000"
        assert (await a.client.put(unknown, json=ok, headers=admin)).status_code == 404
        nowhere = f"/v1/sites/nowhere/lead-times/{GTIN_A}"
        assert (await a.client.put(nowhere, json=ok, headers=admin)).status_code == 404
        assert (await a.client.put(LEAD, json=ok, headers=admin)).json()["lead_time_days"] == 1.5
