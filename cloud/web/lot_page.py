"""The lot page: its temperature exposure over its whole life, MKT, budget, stays, excursions.

The figures come from the cold-chain engine (``cloud.coldchain.exposure.lot_exposure``), the
same computation the recall view and the API use; this module only lays them out.
"""

from __future__ import annotations

from datetime import timedelta

from cloud.coldchain.exposure import LotExposure
from cloud.web.pages import disposition_form, duration, e, frame, temp, when
from cloud.web.svg import Point, line_chart


def _chart(x: LotExposure) -> str:
    """The trace from its first known bucket: months of "no data" before it would squash the
    chart to a line (the unknown time is in the figures table and said under the chart)."""
    profile = x.lot.profile
    mean: list[Point] = []
    low: list[Point] = []
    high: list[Point] = []
    trace = x.exposure.trace
    first = next((i for i, b in enumerate(trace) if b.mean is not None), len(trace))
    note = (
        f"<p class='legend'>No readings from {when(trace[0].start)} to {when(trace[first].start)}."
        "</p>"
        if 0 < first < len(trace)
        else ""
    )
    for b in trace[first:]:
        mean.append((b.start, b.mean))
        low.append((b.start, b.min))
        high.append((b.start, b.max))
    chart = line_chart(
        [("mean", mean), ("min", low), ("max", high)],
        low=profile.action_low,
        high=profile.action_high,
        label=f"Exposure of lot {x.lot.lot_number}",
    )
    return chart + note


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


def _stays(x: LotExposure) -> str:
    rows = "".join(
        f"<tr><td>{e(s.location_id)}</td><td>{when(s.start)}</td><td>{when(s.end)}</td></tr>"
        for s in x.stays
    )
    return (
        "<table><thead><tr><th>Location</th><th>From</th><th>Until</th></tr></thead>"
        f"<tbody>{rows or '<tr><td colspan=3>never stored</td></tr>'}</tbody></table>"
    )


def _excursions(x: LotExposure) -> str:
    if not x.excursions:
        return "<p class='empty'>No excursion during its stays.</p>"
    rows = "".join(
        f"<tr class='{e(ex.level)}'><td>#{ex.excursion_id}</td><td>{e(ex.location_id)}</td>"
        f"<td>{e(ex.level)} · {e(ex.kind)}</td><td>{when(ex.started_at)}</td>"
        f"<td>{when(ex.ended_at)}</td><td>{e(temp(ex.peak_value))}</td></tr>"
        for ex in x.excursions
    )
    return (
        "<table><thead><tr><th></th><th>Where</th><th>Excursion</th><th>From</th><th>Until</th>"
        f"<th>Peak</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def lot_page(x: LotExposure, *, product: str, user: str) -> str:
    lot = x.lot
    act = (
        f"<section><h2>QA disposition</h2>{disposition_form(lot.lot_id)}</section>"
        if lot.status == "quarantined"
        else ""
    )
    body = (
        f'<section class="lot" data-lot="{lot.lot_id}" data-status="{e(lot.status)}">'
        f"<h2>{e(product)} · lot {e(lot.lot_number)}</h2>"
        f"<p>GTIN {e(lot.gtin)} · lot id {lot.lot_id}</p>{_figures(x)}</section>"
        f"<section><h2>Exposure</h2>{_chart(x)}"
        "<p class='legend'><span class='s0'>mean</span> <span class='s1'>min</span>"
        " <span class='s2'>max</span> per bucket; the band is the action range.</p></section>"
        f"{act}<section><h2>Where it was</h2>{_stays(x)}</section>"
        f"<section><h2>Excursions during its stays</h2>{_excursions(x)}</section>"
    )
    return frame(f"Lot {lot.lot_number}", body, user=user)
