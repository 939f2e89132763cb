"""The lot page: its temperature exposure over its whole life, MKT, budget, stays, excursions.

The figures come from the cold-chain engine (``cloud.coldchain.exposure.lot_exposure``), the
same computation the recall view and the API use; this module only lays them out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from cloud.coldchain.exposure import LotExposure
from cloud.coldchain.profiles import StorageProfile
from cloud.ledger.release_guard import OpenExcursion
from cloud.signatures.core import Signature
from cloud.web.dispositions import Disposition
from cloud.web.pages import disposition_form, duration, e, frame, temp, when
from cloud.web.permissions import Can
from cloud.web.unit_page import chart_head
from cloud.web.wording import excursion_words


def _chart(x: LotExposure, places: dict[str, str], timezone: str) -> str:
    """The exposure chart: ``static/charts.js`` draws it with uPlot from the data attribute
    (the whole trace is small: at most ``MAX_TRACE_BUCKETS`` buckets, zoomed in the browser).

    The trace starts at its first known bucket: months of "no data" before it would squash the
    chart to a line (the unknown time is in the figures table and said under the chart)."""
    profile = x.lot.profile
    trace = x.exposure.trace
    first = next((i for i, b in enumerate(trace) if b.mean is not None), len(trace))
    note = (
        f"<p class='legend'>No readings from {when(trace[0].start)} to {when(trace[first].start)}."
        "</p>"
        if 0 < first < len(trace)
        else ""
    )
    shown = trace[first:]
    width = (shown[1].start - shown[0].start).total_seconds() if len(shown) > 1 else 3600.0
    data = {
        "timezone": timezone,
        "bucket": width,
        "limits": {"action_low": profile.action_low, "action_high": profile.action_high,
                   "alert_low": profile.alert_low, "alert_high": profile.alert_high},
        "time": [b.start.timestamp() for b in shown],
        "mean": [_round(b.mean) for b in shown],
        "min": [_round(b.min) for b in shown],
        "max": [_round(b.max) for b in shown],
        "known": [b.known.total_seconds() for b in shown],
        "stays": [{"location": s.location_id, "name": places.get(s.location_id, s.location_id),
                   "start": s.start.timestamp(),
                   "end": None if s.end is None else s.end.timestamp()} for s in x.stays],
        "excursions": [{"start": ex.started_at.timestamp(),
                        "end": None if ex.ended_at is None else ex.ended_at.timestamp(),
                        "level": ex.level, "kind": ex.kind} for ex in x.excursions],
    }  # fmt: skip
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"lot-{x.lot.lot_number}")
    controls = (
        "<div class='chart-controls'>"
        "<button type='button' data-pan='-0.5'>← earlier</button>"
        "<button type='button' data-pan='0.5'>later →</button>"
        "<button type='button' data-reset='1'>whole life</button>"
        f"<a class='csv' href='#' download='{e(name)}.csv'>Download CSV of the shown data</a>"
        f" <a class='report' href='/ui/reports/lot/{x.lot.lot_id}' download>Cold-chain"
        " certificate (PDF, archived)</a>"
        "</div><p class='shown' aria-live='polite'></p>"
    )
    stats = "".join(
        f"<tr><th>{label}</th><td data-stat='{key}'>…</td></tr>"
        for label, key in (("Minimum", "min"), ("Maximum", "max"), ("Mean", "mean"),
                           ("MKT of the hourly means shown", "mkt"))
    )  # fmt: skip
    return (
        f"<div class='lot-exposure' data-exposure='{e(json.dumps(data))}'>{controls}"
        "<div class='chart-box' role='img'"
        f" aria-label='Exposure of lot {e(x.lot.lot_number)}'></div>"
        "<p class='legend'>Drag across the chart to zoom in, double-click for the whole life."
        " Mean, min and max per bucket; shaded: <span class='x-action'>out of range, stock at"
        " risk</span>, <span class='x-alert'>outside the usual range</span>, <span class='x-gap'>"
        "no data</span>; each stay's location is named along the top.</p>"
        f"{_limit_list(profile)}<table class='figures chart-stats'>{stats}</table></div>{note}"
    )


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _limit_list(profile: StorageProfile) -> str:
    items = [
        ("action", "high", profile.action_high),
        ("alert", "high", profile.alert_high),
        ("alert", "low", profile.alert_low),
        ("action", "low", profile.action_low),
    ]
    shown = "".join(
        f"<li class='{level}' data-limit='{level}-{side}'>{level} {side} {e(temp(value))}</li>"
        for level, side, value in items
        if value is not None
    )
    return f"<ul class='chart-limits'>{shown}</ul>"


def _figures(x: LotExposure) -> str:
    b = x.exposure.budget
    profile = x.lot.profile
    limit = "" if profile.mkt_limit is None else f" (limit {temp(profile.mkt_limit)})"
    remaining = "exhausted" if b.exhausted else duration(max(b.remaining, timedelta(0)))
    rows = [
        ("Status", x.lot.status),
        ("Storage profile", f"{profile.name}: {temp(profile.action_low)} – "
                            f"{temp(profile.action_high)}"),
        ("MKT, whole life", temp(x.exposure.mkt)),
        (f"MKT, worst {duration(profile.mkt_window)} window",
         temp(x.exposure.worst_window_mkt) + limit),
        ("Time out of range", duration(b.out_of_range)),
        ("Time unknown (no data)", duration(b.unknown)),
        ("Stability budget", f"{duration(b.budget)}; left: {remaining}"),
    ]  # fmt: skip
    cells = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    return f"<table class='figures'>{cells}</table>"


def _stays(x: LotExposure, places: dict[str, str]) -> str:
    rows = "".join(
        f"<tr><td>{e(places.get(s.location_id, s.location_id))}</td><td>{when(s.start)}</td>"
        f"<td>{when(s.end)}</td></tr>"
        for s in x.stays
    )
    return (
        "<table><thead><tr><th>Location</th><th>From</th><th>Until</th></tr></thead>"
        f"<tbody>{rows or '<tr><td colspan=3>never stored</td></tr>'}</tbody></table>"
    )


def _excursions(x: LotExposure, places: dict[str, str]) -> str:
    if not x.excursions:
        return "<p class='empty'>No excursion during its stays.</p>"
    rows = "".join(
        f"<tr class='{e(ex.level)}' data-excursion='{ex.excursion_id}'>"
        f"<td>{e(places.get(ex.location_id, ex.location_id))}</td>"
        f"<td>{e(_what(ex.kind, ex.level, ex.started_at, ex.ended_at))}</td>"
        f"<td>{when(ex.started_at)}</td><td>{when(ex.ended_at) if ex.ended_at else 'still open'}"
        f"</td><td>{e(temp(ex.peak_value))}</td></tr>"
        for ex in x.excursions
    )
    return (
        "<table><thead><tr><th>Where</th><th>What happened</th><th>From</th><th>Until</th>"
        f"<th>Peak</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _what(kind: str, level: str, start: datetime, end: datetime | None) -> str:
    lasted = "" if end is None else duration(end - start)
    words = excursion_words(kind, level, lasted or "a while")
    return words.says if end is not None else f"{words.title} (still going on)"


def _decided(d: Disposition) -> str:
    """Who released or rejected the lot, when and why (from the signed ledger entry)."""
    verb = "Released" if d.decision == "release" else "Rejected"
    meaning = f"<p>Signed as: {e(d.meaning)}.</p>" if d.meaning else ""
    confirmed = (
        f"<p class='confirmed-open'>Released while an excursion was still open at"
        f" {e(', '.join(d.confirmed_open))}; {e(d.actor)} confirmed it.</p>"
        if d.confirmed_open
        else ""
    )
    return (
        f"<section class='decided' data-decision='{e(d.decision)}'><h2>QA decision</h2>"
        f"<p><b>{verb} by {e(d.actor)}</b> on {when(d.at)}.</p>"
        f"<p>Why: {e(d.reason or '—')}</p>{meaning}{confirmed}</section>"
    )


def _act(lot_id: int, status: str, can: Can, still_open: list[OpenExcursion]) -> str:
    if status != "quarantined":
        return ""
    if not can.dispose:
        return "<section><h2>QA disposition</h2><p class='waiting'>Waiting for QA.</p></section>"
    warn = (
        "<p class='open-excursion' role='alert'>An excursion affecting this lot is still open: "
        + e("; ".join(str(x) for x in still_open))
        + ". Releasing it now needs your confirmation.</p>"
        if still_open
        else ""
    )
    form = disposition_form(lot_id, confirm=bool(still_open))
    return f"<section><h2>QA disposition</h2>{warn}{form}</section>"


def signatures_section(signatures: Sequence[Signature]) -> str:
    """The record's e-signatures: printed name, time, meaning (21 CFR 11.50), and what for."""
    if not signatures:
        return ""
    items = "".join(
        f"<li data-signature='{s.signature_id}'><b>{e(s.manifestation())}</b>"
        f" <small>({e(s.action)}, {e(s.factors)}, sha256 {e(s.content_hash[:16])}…)</small></li>"
        for s in signatures
    )
    return f"<section class='signatures'><h2>Electronic signatures</h2><ul>{items}</ul></section>"


def lot_page(
    x: LotExposure,
    *,
    product: str,
    user: str,
    places: dict[str, str] | None = None,
    timezone: str = "UTC",
    can: Can | None = None,
    still_open: list[OpenExcursion] | None = None,
    decided: Disposition | None = None,
    signatures: Sequence[Signature] = (),
) -> str:
    """``places``: location names by id (ids where missing); ``timezone``: the site's, for the
    chart's time axis."""
    places = places or {}
    lot = x.lot
    act = _act(lot.lot_id, lot.status, can or Can(), still_open or [])
    if decided is not None and lot.status in ("released", "rejected"):
        act = _decided(decided) + act
    body = (
        f'<section class="lot" data-lot="{lot.lot_id}" data-status="{e(lot.status)}"'
        f' data-timezone="{e(timezone)}">'
        f"<h2>{e(product)} · lot {e(lot.lot_number)}</h2>"
        f"<p>GTIN {e(lot.gtin)}</p>{_figures(x)}</section>"
        f"<section><h2>Exposure</h2>{_chart(x, places, timezone)}</section>"
        f"{act}<section><h2>Where it was</h2>{_stays(x, places)}</section>"
        f"<section><h2>Excursions during its stays</h2>{_excursions(x, places)}</section>"
        f"{signatures_section(signatures)}"
    )
    return frame(f"Lot {lot.lot_number}", body, user=user, head=chart_head())
