"""Gathers what ``figures`` needs for one site and window from the ledger, counts and ASNs.

Consumption is what left the books (``issue`` entries) from the site's locations, withdrawals
and customer deliveries included; transfers to another site are moves, not consumption. Usable
stock is available or released; transit locations are not on hand. Days are UTC days.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.transfers.figures import (
    Reorder,
    Tolerance,
    cycle_count_accuracy,
    days_of_supply,
    reorder_point,
    turnover_days,
)
from cloud.transfers.lead_times import DEFAULT_LEAD_TIME_DAYS, lead_times, measured_by_product
from cloud.transfers.store import today

Lead = tuple[float, str]
"""A lead time in days and where it came from."""


@dataclass(frozen=True)
class ProductFigures:
    gtin: str
    on_hand: int
    used: int
    mean_daily_use: float
    days_of_supply: float | None
    turnover_days: float | None
    stock_out_days: int
    lead_time_days: float
    lead_time_source: str
    reorder: Reorder | None


@dataclass(frozen=True)
class SiteFigures:
    site_id: str
    start: date
    end: date
    cycle_count_accuracy: float | None
    counted_items: int
    count_tolerance: Tolerance
    stock_out_rate: float | None
    on_time_receipts: float | None
    receipts_due: int
    in_transit_out: int
    in_transit_in: int
    lead_time_days: float
    lead_time_source: str
    products: list[ProductFigures]


async def _daily(
    conn: AsyncConnection[TupleRow], site: str, end: date
) -> tuple[dict[str, dict[date, int]], dict[str, dict[date, int]]]:
    """Per GTIN and day: the change of usable on-hand stock, and the units issued."""
    cur = await conn.execute(
        "SELECT l.gtin, (e.effective_at AT TIME ZONE 'UTC')::date,"
        " sum(CASE WHEN tl.site_id = %(s)s AND tl.kind <> 'transit'"
        "  AND e.to_status IN ('available', 'released') THEN e.quantity ELSE 0 END)"
        " - sum(CASE WHEN fl.site_id = %(s)s AND fl.kind <> 'transit'"
        "  AND e.from_status IN ('available', 'released') THEN e.quantity ELSE 0 END),"
        " sum(CASE WHEN e.movement = 'issue' AND fl.site_id = %(s)s THEN e.quantity ELSE 0 END)"
        " FROM ledger_entries e JOIN lots l USING (lot_id)"
        " LEFT JOIN locations fl ON fl.location_id = e.from_location"
        " LEFT JOIN locations tl ON tl.location_id = e.to_location"
        " WHERE (fl.site_id = %(s)s OR tl.site_id = %(s)s)"
        " AND e.effective_at < (%(end)s::date + 1)::timestamp AT TIME ZONE 'UTC'"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        {"s": site, "end": end},
    )
    change: dict[str, dict[date, int]] = defaultdict(dict)
    issued: dict[str, dict[date, int]] = defaultdict(dict)
    for gtin, day, delta, used in await cur.fetchall():
        change[str(gtin)][day] = int(delta)
        issued[str(gtin)][day] = int(used)
    return change, issued


async def _count_items(
    conn: AsyncConnection[TupleRow], site: str, start: date, end: date
) -> list[tuple[int, int]]:
    """(booked, counted) per lot and location of each count at the site in the window."""
    cur = await conn.execute(
        "SELECT c.count_id, c.result FROM cycle_counts c JOIN locations l USING (location_id)"
        " WHERE l.site_id = %s AND c.status <> 'cancelled'"
        " AND (c.counted_at AT TIME ZONE 'UTC')::date BETWEEN %s AND %s",
        (site, start, end),
    )
    items: list[tuple[int, int]] = []
    for _, result in await cur.fetchall():
        per_lot: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        matched = list(result.get("matched", []))
        lots = await conn.execute(
            "SELECT epc_uri, lot_id FROM units WHERE epc_uri = ANY(%s)", (matched,)
        )
        for _, lot in await lots.fetchall():
            per_lot[int(lot)][0] += 1
            per_lot[int(lot)][1] += 1
        for m in result.get("missing", []):
            per_lot[int(m["lot_id"])][0] += 1
        for f in result.get("found", []):
            per_lot[int(f["lot_id"])][1] += 1
        for b in result.get("bulk", []):
            per_lot[int(b["lot_id"])][0] += int(b["on_record"])
            per_lot[int(b["lot_id"])][1] += int(b["counted"])
        items += [(booked, counted) for booked, counted in per_lot.values()]
    return items


async def _receipts(
    conn: AsyncConnection[TupleRow], site: str, start: date, now: datetime
) -> tuple[int, int]:
    """(on time, due): ASNs expected in the window up to now, received in full by then."""
    cur = await conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE a.status = 'received' AND"
        " (SELECT max(i.received_at) FROM asn_items i WHERE i.asn_id = a.asn_id)"
        "  <= a.expected_at) FROM asns a WHERE a.site_id = %s AND a.expected_at IS NOT NULL"
        " AND a.expected_at >= %s::date AND a.expected_at <= %s",
        (site, start, now),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[1]), int(row[0])


async def _in_transit(conn: AsyncConnection[TupleRow], site: str) -> tuple[int, int]:
    cur = await conn.execute(
        "SELECT coalesce(sum(b.quantity) FILTER (WHERE t.from_site = %(s)s), 0),"
        " coalesce(sum(b.quantity) FILTER (WHERE t.to_site = %(s)s), 0)"
        " FROM transfers t JOIN balances b ON b.location_id = t.transit_location_id"
        " WHERE %(s)s IN (t.from_site, t.to_site) AND b.quantity > 0",
        {"s": site},
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def _lead_time(conn: AsyncConnection[TupleRow], site: str) -> float | None:
    """Mean days from order to receipt of the transfers this site received."""
    cur = await conn.execute(
        "SELECT avg(extract(epoch FROM received_at - created_at)) / 86400 FROM transfers"
        " WHERE to_site = %s AND received_at IS NOT NULL",
        (site,),
    )
    row = await cur.fetchone()
    return None if row is None or row[0] is None else float(row[0])


async def _lead_times(
    conn: AsyncConnection[TupleRow], site: str, given: float | None
) -> tuple[Lead, dict[str, Lead]]:
    """The site's lead time and each product's own where it has one (lead_times module)."""
    if given is not None:
        return (given, "given"), {}
    measured = await _lead_time(conn, site)
    site_lead: Lead = (
        (measured, "measured from received transfers") if measured
        else (DEFAULT_LEAD_TIME_DAYS, "default (no transfer received yet)")
    )  # fmt: skip
    leads: dict[str, Lead] = {
        g: (d, "measured from this product's received transfers")
        for g, d in (await measured_by_product(conn, site)).items()
        if d > 0  # received the moment it was ordered: no lead time to plan with
    }
    for s in await lead_times(conn, site):
        leads[s.gtin] = (s.lead_time.total_seconds() / 86400, "set for this product and site")
    return site_lead, leads


async def site_figures(
    conn: AsyncConnection[TupleRow],
    site: str,
    *,
    now: datetime,
    days: int,
    service_level: float,
    lead_time_days: float | None,
    count_tolerance: Tolerance | None = None,
) -> SiteFigures:
    """Every figure for ``site`` over the ``days`` UTC days ending today (``now``'s date); a
    counted item is accurate within ``count_tolerance`` (default: exact)."""
    tolerance = count_tolerance or Tolerance()
    end = today(now)
    start = end - timedelta(days=days - 1)
    window = [start + timedelta(days=i) for i in range(days)]
    change, issued = await _daily(conn, site, end)
    (lead, source), leads = await _lead_times(conn, site, lead_time_days)
    products: list[ProductFigures] = []
    stock_out = product_days = 0
    for gtin in sorted(change):
        level = sum(d for day, d in change[gtin].items() if day < start)
        levels: list[int] = []
        for day in window:
            level += change[gtin].get(day, 0)
            levels.append(level)
        use = [float(issued[gtin].get(day, 0)) for day in window]
        mean_use = sum(use) / days
        outs = sum(1 for v in levels if v <= 0)
        product_lead, product_source = leads.get(gtin, (lead, source))
        stock_out += outs
        product_days += days
        products.append(
            ProductFigures(
                gtin=gtin, on_hand=levels[-1], used=int(sum(use)), mean_daily_use=mean_use,
                days_of_supply=days_of_supply(levels[-1], mean_use),
                turnover_days=turnover_days(sum(levels) / days, sum(use), days),
                stock_out_days=outs, lead_time_days=product_lead,
                lead_time_source=product_source,
                reorder=(
                    reorder_point(use, lead_time_days=product_lead, service_level=service_level)
                    if days >= 2 else None
                ),
            )
        )  # fmt: skip
    items = await _count_items(conn, site, start, end)
    on_time, due = await _receipts(conn, site, start, now)
    out_t, in_t = await _in_transit(conn, site)
    return SiteFigures(
        site_id=site, start=start, end=end,
        cycle_count_accuracy=cycle_count_accuracy(items, tolerance=tolerance),
        counted_items=len(items), count_tolerance=tolerance,
        stock_out_rate=stock_out / product_days if product_days else None,
        on_time_receipts=on_time / due if due else None, receipts_due=due,
        in_transit_out=out_t, in_transit_in=in_t, lead_time_days=lead,
        lead_time_source=source, products=products,
    )  # fmt: skip
