"""The history page of one storage unit: a zoomable uPlot chart fed by ``/ui/history``.

The page itself carries no data: ``static/charts.js`` asks ``/ui/history`` for the range in
view (at the resolution that range calls for, see ``cloud.web.history``) and draws it with
uPlot, served from our own origin (``/ui/vendor/``) under the dashboard's strict CSP.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from cloud.web.closures import UnitExcursion, excursions_section
from cloud.web.history import UnitInfo
from cloud.web.pages import e, frame, temp
from cloud.web.permissions import Can

UPLOT_VERSION = "1.6.32"
"""Pinned by ``cloud/web/vendor/package-lock.json``; in the asset URLs so browsers refetch."""
CHARTS_VERSION = "5"
"""Bumped when charts.js or charts.css change."""

SPANS = (("6 h", 6 * 3600), ("24 h", 86400), ("7 d", 7 * 86400), ("30 d", 30 * 86400),
         ("1 year", 365 * 86400))  # fmt: skip


_STATS = (("Minimum", "min"), ("Maximum", "max"), ("Mean", "mean"),
          ("Mean kinetic temperature", "mkt"), ("Samples", "samples"),
          ("Points from", "resolution"))  # fmt: skip


def chart_head() -> str:
    """The chart library and our chart code, for the ``<head>`` of a page with a chart."""
    return (
        f"<link rel='stylesheet' href='/ui/vendor/uPlot.min.css?v={UPLOT_VERSION}'>"
        f"<link rel='stylesheet' href='/ui/static/charts.css?v={CHARTS_VERSION}'>"
        f"<script src='/ui/vendor/uPlot.iife.min.js?v={UPLOT_VERSION}' defer></script>"
        f"<script src='/ui/static/charts.js?v={CHARTS_VERSION}' defer></script>"
    )


def _limits(u: UnitInfo) -> str:
    """The limits as text too: the chart labels them, this list is readable without canvas."""
    items = [
        ("action", "high", u.action_high), ("alert", "high", u.alert_high),
        ("alert", "low", u.alert_low), ("action", "low", u.action_low),
    ]  # fmt: skip
    shown = "".join(
        f"<li class='{level}' data-limit='{level}-{side}'>{level} {side} {e(temp(value))}</li>"
        for level, side, value in items
        if value is not None
    )
    return f"<ul class='chart-limits'>{shown}</ul>" if shown else "<p>No limits (no profile).</p>"


def unit_page(
    u: UnitInfo, *, user: str, excursions: Sequence[UnitExcursion] = (), can: Can | None = None
) -> str:
    """The chart, then the unit's excursions with their closures (the close form for QA)."""
    loc = quote(u.location_id, safe="")
    buttons = "".join(f"<button type='button' data-span='{s}'>{e(n)}</button>" for n, s in SPANS)
    profile = e(u.profile_name or "no storage profile")
    sensors = ", ".join(u.sensor_names.get(x, x) for x in u.sensors)
    stats = "".join(
        f"<tr><th>{label}</th><td data-stat='{key}'>…</td></tr>" for label, key in _STATS
    )
    body = (
        f"<section class='unit-history' data-location='{e(u.location_id)}'"
        f" data-tz='{e(u.timezone)}' data-timezone='{e(u.timezone)}'"
        f" data-history='/ui/history?location={e(loc)}'"
        f" data-csv='/ui/history.csv?location={e(loc)}'"
        f" data-report='/ui/reports/unit?location={e(loc)}'>"
        f"<h2>{e(u.name)} · {e(u.site_name)}</h2>"
        f"<p class='kind'>{e(u.kind)} · {profile} · sensors: {e(sensors or 'none')}"
        f" · times in {e(u.timezone)}</p>"
        f"<div class='chart-controls'>{buttons}"
        "<button type='button' data-pan='-0.5'>← earlier</button>"
        "<button type='button' data-pan='0.5'>later →</button>"
        "<button type='button' data-zoom='2'>zoom out</button>"
        "<a class='csv' href='#' download>Download CSV of the shown data</a>"
        " <a class='report' href='#' download>Temperature record (PDF, archived)</a></div>"
        "<p class='shown' aria-live='polite'></p>"
        "<div class='chart-box' role='img' aria-label='Temperature history'></div>"
        "<p class='legend'>Drag across the chart to zoom in. Shaded: <span class='x-action'>"
        "out of range, stock at risk</span>, <span class='x-alert'>outside the usual range"
        "</span>,"
        " <span class='x-gap'>no data</span>.</p>"
        f"{_limits(u)}<table class='figures chart-stats'>{stats}</table>"
        "<h3>Noted in this range</h3><p class='legend'>! warning (door-open pattern, early"
        " warning, no data) · ✓ acknowledged · Q QA disposition · <span class='x-maint'>M"
        " maintenance window</span> (alarms suppressed) · <span class='x-cal'>C sensor"
        " calibration overdue</span> (readings flagged) · R excursion closed (root cause,"
        " corrective action)</p><ol class='annotations'></ol>"
        "</section>"
    )
    body += excursions_section(excursions, can or Can())
    return frame(u.name, body, user=user, head=chart_head())
