"""Inventory figures on a seeded history with known answers (real database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import ensure_lot, post
from cloud.transfers.figures import cycle_count_accuracy
from cloud.transfers.figures_store import site_figures
from tests.support.figures_seed import book_count, received_asn
from tests.support.ledger_seed import FRIDGE, GTIN_A, GTIN_B, SITE, seed

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
USE = [10, 12, 8, 10, 10, 12, 8]  # the last seven days' consumption: mean 10, sd 1.633


def test_accuracy_is_per_item_without_netting() -> None:
    assert cycle_count_accuracy([(100, 95), (100, 105)]) == 0.0
    assert cycle_count_accuracy([(100, 100), (100, 99)]) == 0.5
    assert cycle_count_accuracy([(100, 99)], tolerance=1) == 1.0
    assert cycle_count_accuracy([]) is None


async def test_site_figures_on_a_seeded_history(timescale_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        await seed(conn)
        a = await ensure_lot(conn, gtin=GTIN_A, lot_number="A1", expiry=None)
        b = await ensure_lot(conn, gtin=GTIN_B, lot_number="B1", expiry=None)
        fridge = Place(FRIDGE, Status.AVAILABLE)
        start = NOW - timedelta(days=10)
        drafts = [
            Draft(Movement.RECEIVE, a, 100, start, "t", to=fridge),
            Draft(Movement.RECEIVE, b, 5, start, "t", to=fridge),
            Draft(Movement.ISSUE, b, 5, NOW - timedelta(days=4), "t", frm=fridge),
        ]
        for i, used in enumerate(USE):
            at = NOW - timedelta(days=6 - i, hours=2)
            drafts.append(Draft(Movement.ISSUE, a, used, at, "ward", frm=fridge))
        await post(conn, drafts)
        await book_count(conn, a, b, NOW - timedelta(days=1))
        for ref, expected, got in (("ON", 2, 1), ("LATE", 2, 3)):
            await received_asn(conn, ref, NOW - timedelta(days=expected), NOW - timedelta(days=got))
        await conn.commit()
        f = await site_figures(conn, SITE, now=NOW, days=7, service_level=0.95, lead_time_days=4)
    assert (f.cycle_count_accuracy, f.counted_items) == (0.0, 2)
    assert (f.on_time_receipts, f.receipts_due) == (0.5, 2)
    assert (f.in_transit_out, f.in_transit_in) == (0, 0)
    by = {p.gtin: p for p in f.products}
    pa, pb = by[GTIN_A], by[GTIN_B]
    assert (pa.on_hand, pa.used, pa.mean_daily_use, pa.stock_out_days) == (30, 70, 10.0, 0)
    assert pa.days_of_supply == 3.0
    assert pa.reorder is not None
    assert round(pa.reorder.sd_daily, 4) == 1.633
    assert round(pa.reorder.safety_stock, 2) == 5.37  # 1.6449 x 1.633 x sqrt(4)
    assert round(pa.reorder.reorder_point, 2) == 45.37  # 10 x 4 + 5.37
    # B ran out on 6 March: it ends 6, 7, 8, 9 and 10 March (of 4-10 March) with nothing
    assert pb.stock_out_days == 5
    assert f.stock_out_rate == 5 / 14
