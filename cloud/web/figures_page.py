"""``/ui/figures``: a site's inventory figures as key-figure tiles and a replenishment table.

A page of its own beside the overview (the overview's key figures link to it): the overview
spans every site, while stock figures only mean something per site. The numbers come from the
same room function as ``GET /v1/sites/{id}/figures`` (``cloud.transfers.figures_store``), so the
page and the API cannot disagree; their definitions are in docs/transfers.md ("Figures").
Read-only: every signed-in role sees it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.api.deps import Pool
from cloud.transfers.figures_store import ProductFigures, SiteFigures, site_figures
from cloud.web import queries
from cloud.web.config import WebSettings
from cloud.web.pages import e, frame, section
from cloud.web.session import MaybeUser, under_settings
from protocols.records import ID_PATTERN

SERVICE_LEVEL = 0.95
"""The cycle service level the page's reorder points are computed for (z = 1.645)."""

router = APIRouter(prefix="/ui", tags=["dashboard"], include_in_schema=False)


def build_router(settings: WebSettings | None = None) -> APIRouter:
    """The page's routes with the dashboard's session settings (``COLDTRACE_WEB_*``)."""
    return under_settings(router, settings)


def share(value: float | None) -> str:
    """A share as a whole percentage, or a dash when there is nothing to divide by.

    >>> share(0.5), share(None), share(1 / 3)
    ('50%', '—', '33%')
    """
    return "—" if value is None else f"{value:.0%}"


def number(value: float | None, digits: int = 1) -> str:
    """A figure rounded for people, or a dash (no consumption: no days of supply).

    >>> number(3.0), number(None), number(45.3716, 0)
    ('3.0', '—', '45')
    """
    return "—" if value is None else f"{value:.{digits}f}"


def tiles(f: SiteFigures) -> str:
    """The site's key figures as the overview draws its own (same CSS classes)."""
    stock_outs = sum(p.stock_out_days for p in f.products)
    below = sum(1 for p in f.products if _below_reorder_point(p))
    items: list[tuple[str, str, str]] = [
        ("Cycle-count accuracy", share(f.cycle_count_accuracy),
         f"{f.counted_items} items counted; an item is accurate when its count equals the book"
         " (per lot and location, never netted)"),
        ("Stock-out rate", share(f.stock_out_rate),
         f"{stock_outs} product-days ended with no usable stock"),
        ("On-time receipts", share(f.on_time_receipts),
         f"of {f.receipts_due} ASNs due, received in full by their expected time"),
        ("Units in transit", str(f.in_transit_out + f.in_transit_in),
         f"{f.in_transit_out} leaving, {f.in_transit_in} coming"),
        ("Below reorder point", str(below), f"of {len(f.products)} products"),
        ("Site lead time", f"{number(f.lead_time_days)} d", f.lead_time_source),
    ]  # fmt: skip
    body = "".join(
        f"<div class='kpi'><div class='label'>{e(label)}</div><div class='value'>{e(value)}"
        f"</div><div class='note'>{e(note)}</div></div>"
        for label, value, note in items
    )
    period = f"{f.start.isoformat()} to {f.end.isoformat()} (UTC days)"
    return f"<p class='period'>{e(period)}</p><div class='kpis'>{body}</div>"


def _below_reorder_point(p: ProductFigures) -> bool:
    return p.reorder is not None and p.used > 0 and p.on_hand <= p.reorder.reorder_point


def products_table(f: SiteFigures, names: Mapping[str, str]) -> str:
    """One row per product: stock, consumption, and the replenishment suggestion."""
    if not f.products:
        return "<p>No stock has moved at this site yet.</p>"
    rows = "".join(_product_row(p, names.get(p.gtin, "")) for p in f.products)
    return (
        "<table class='figures'><thead><tr><th>Product</th><th>On hand</th>"
        "<th>Used (mean/day)</th><th>Days of supply</th><th>Turnover (days)</th>"
        "<th>Stock-out days</th><th>Lead time (days)</th><th>Safety stock</th>"
        "<th>Reorder point</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        f"<p class='note'>Safety stock = z · σ<sub>d</sub> · √L and reorder point = d̄ · L +"
        f" safety stock, for a {SERVICE_LEVEL:.0%} service level, the daily consumption of"
        " the period and each product's lead time (set for the product and site, else measured"
        " from its received transfers, else the site's: hover for which).</p>"
    )


def _product_row(p: ProductFigures, name: str) -> str:
    r = p.reorder
    flag = " <span class='bad'>reorder</span>" if _below_reorder_point(p) else ""
    return (
        f"<tr><td>{e(name or p.gtin)}<br><small>{e(p.gtin)}</small></td>"
        f"<td>{p.on_hand}{flag}</td><td>{p.used} ({number(p.mean_daily_use)})</td>"
        f"<td>{number(p.days_of_supply)}</td><td>{number(p.turnover_days)}</td>"
        f"<td>{p.stock_out_days}</td>"
        f"<td title='{e(p.lead_time_source)}'>{number(p.lead_time_days)}</td>"
        f"<td>{number(None if r is None else r.safety_stock, 0)}</td>"
        f"<td>{number(None if r is None else r.reorder_point, 0)}</td></tr>"
    )


def site_picker(sites: Sequence[tuple[str, str]], chosen: str, days: int) -> str:
    options = "".join(
        f"<option value='{e(s)}'{' selected' if s == chosen else ''}>{e(name)}</option>"
        for s, name in sites
    )
    return (
        "<form method='get' action='/ui/figures' class='picker'>"
        f"<label>Site <select name='site'>{options}</select></label> "
        f"<label>Days <input name='days' type='number' min='2' max='730' value='{days}'>"
        "</label> <button>Show</button></form>"
    )


async def _sites(conn: AsyncConnection[TupleRow]) -> list[tuple[str, str]]:
    cur = await conn.execute("SELECT site_id, name FROM sites ORDER BY name, site_id")
    return [(str(s), str(n)) for s, n in await cur.fetchall()]


async def _product_names(conn: AsyncConnection[TupleRow]) -> dict[str, str]:
    cur = await conn.execute("SELECT gtin, name FROM products")
    return {str(g): str(n) for g, n in await cur.fetchall()}


@router.get("/figures", response_class=HTMLResponse)
async def figures_page(
    pool: Pool,
    user: MaybeUser,
    site: Annotated[str | None, Query(max_length=128, pattern=ID_PATTERN)] = None,
    days: Annotated[int, Query(ge=2, le=730)] = 30,
) -> Response:
    if user is None:
        return RedirectResponse("/ui/login", status_code=status.HTTP_303_SEE_OTHER)
    who = f"{user.name} ({user.role.value})"
    async with pool.connection() as conn:
        sites = await _sites(conn)
        if not sites:
            body = section("figures", "Inventory figures", "<p>No sites yet.</p>")
            return HTMLResponse(frame("Inventory figures", body, user=who))
        chosen = site or sites[0][0]
        if chosen not in {s for s, _ in sites}:
            body = section("figures", "Inventory figures", f"<p>No site {e(chosen)}.</p>")
            html = frame("Inventory figures", body, user=who)
            return HTMLResponse(html, status_code=status.HTTP_404_NOT_FOUND)
        now = await queries.database_now(conn)
        f = await site_figures(
            conn, chosen, now=now, days=days, service_level=SERVICE_LEVEL, lead_time_days=None
        )
        names = await _product_names(conn)
    body = (
        "<h1>Inventory figures</h1>"
        + site_picker(sites, chosen, days)
        + section("figures", "Key figures", tiles(f))
        + section("replenishment", "Products and replenishment", products_table(f, names))
    )
    return HTMLResponse(frame("Inventory figures", body, user=who))
