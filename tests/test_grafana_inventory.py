"""The Grafana inventory dashboard gives the figures worked out by hand for the seeded history
(tests/support/figures_seed.py), the same as the API and the dashboard page: its SQL repeats
the per-item counting of ``cloud.transfers.figures_store``, so this test keeps the two in step.
Queries run as Grafana's datasource does, under the read-only role, with macros expanded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.support.figures_seed import USE, seed_history
from tests.support.ledger_seed import GTIN_A, SITE, seed
from tests.test_grafana_panels import ROOT, expand, load, panels

pytestmark = pytest.mark.integration


async def panel_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    board = load(ROOT / "dashboards" / "inventory.json")
    end = datetime.now(UTC)
    start = end - timedelta(days=30)  # the dashboard's default range
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("SET ROLE coldtrace_readonly")
        [variable] = board["templating"]["list"]
        cur = await conn.execute(expand(variable["query"], {}, start, end).encode())
        sites = [str(r[0]) for r in await cur.fetchall()]
        for panel in panels(board):
            [target] = panel["targets"]
            cur = await conn.execute(expand(target["rawSql"], {"site": sites}, start, end).encode())
            out[panel["title"]] = list(await cur.fetchall())
    return out


async def test_inventory_panels_give_the_hand_worked_figures(timescale_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        await seed(conn)
        await conn.commit()
    await seed_history(timescale_url)
    rows = await panel_rows(timescale_url)
    assert rows["Cycle-count accuracy"] == [(0.0,)]  # 100/95 and 100/105: not netted to 100 %
    assert rows["On-time receipts"] == [(0.5,)]
    assert rows["Units consumed"] == [(sum(USE),)]  # the move to transit is not consumption
    assert [(metric, used) for _, metric, used in rows["Consumption per day"]] == [
        ("Vaccine A", float(u)) for u in USE
    ]
    assert all(isinstance(r[0], datetime) for r in rows["Consumption per day"])
    assert rows["Usable stock by product"] == [(SITE, "Vaccine A", GTIN_A, 25)]
    items = sorted((booked, counted) for *_, booked, counted, _ in rows["Cycle-count items"])
    assert items == [(100, 95), (100, 105)]
