"""The temperature record of a storage unit over a period, as PDF and CSV.

Page 1: the unit, its limits, the period's figures (the chart's statistics) and the chart;
then the daily record (per sensor and local day), excursions, gaps, acknowledgements and
maintenance windows, dispositions, and the periods a sensor's calibration was overdue.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cloud.reports.archive import Format, Rendered
from cloud.reports.chart import Limits, Line, Spans, chart
from cloud.reports.document import duration, esc, facts, page_html, table, temp, when
from cloud.reports.pdf import print_pdf
from cloud.reports.unit_data import UnitRecord
from cloud.spreadsheet import csv_writer, text_cell
from cloud.web.history import History


def _iso(t: datetime | None) -> str:
    return "" if t is None else t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _lines(h: History) -> list[Line]:
    return [
        Line(
            h.unit.sensor_names.get(s.sensor_id, s.sensor_id),
            list(zip(s.time, s.mean, s.low, s.high, strict=True)),
        )
        for s in h.series
    ]


def unit_chart(r: UnitRecord) -> str:
    h, u = r.history, r.history.unit
    spans = Spans(
        excursions=[(x.started_at, x.ended_at or h.end, x.level) for x in r.excursions],
        gaps=h.gaps,
        overdue=[(o.start, o.end) for o in r.overdue],
    )
    limits = Limits(u.action_low, u.action_high, u.alert_low, u.alert_high)
    return chart(_lines(h), start=h.start, end=h.end, limits=limits, zone=u.timezone,
                 spans=spans)  # fmt: skip


def _summary(r: UnitRecord) -> str:
    h, u, z = r.history, r.history.unit, r.history.unit.timezone
    limits = f"action {temp(u.action_low)} to {temp(u.action_high)} °C" + (
        f", alert {temp(u.alert_low)} to {temp(u.alert_high)} °C"
        if u.alert_low is not None or u.alert_high is not None
        else ""
    )
    return facts([
        ("Storage unit", esc(f"{u.name} ({u.location_id}), {u.site_name}")),
        ("Profile", esc(f"{u.profile_name or 'none'}: {limits}")),
        ("Sensors", esc(", ".join(u.sensor_names.get(s, s) for s in u.sensors) or "none")),
        ("Period", esc(f"{when(h.start, z)} to {when(h.end, z)} ({z})")),
        ("Source", esc({"raw": "every reading", "hourly": "hourly rollups (min/mean/max)",
                        "daily": "daily rollups (min/mean/max)"}[h.resolution])),
        ("Samples", esc(h.stats.samples)),
        ("Minimum / mean / maximum", esc(f"{temp(h.stats.low)} / {temp(h.stats.mean)} /"
                                         f" {temp(h.stats.high)} °C")),
        ("MKT (ΔH/R 10 000 K)", esc(f"{temp(h.stats.mkt)} °C")),
        ("Excursions", esc(len(r.excursions))),
        ("Time without data", esc(duration(sum((b - a for a, b in h.gaps), h.end - h.end)))),
        ("Calibration overdue or failed",
         '<span class="flag">' + esc(", ".join(sorted({o.sensor_id for o in r.overdue})))
         + "</span>" if r.overdue else "no"),
    ])  # fmt: skip


def _events(r: UnitRecord) -> str:
    h, z = r.history, r.history.unit.timezone
    out = ['<h2 class="newpage">Excursions</h2>']
    out.append(table(
        ["#", "sensor", "kind", "level", "start", "end", "peak °C"],
        ([esc(x.excursion_id), esc(x.sensor_id), esc(x.kind), esc(x.level),
          esc(when(x.started_at, z)), esc(when(x.ended_at, z)), temp(x.peak_value)]
         for x in r.excursions),
        numeric=frozenset({0, 6}),
    ))  # fmt: skip
    out.append("<h2>Periods without data</h2>")
    out.append(table(["from", "to", "duration"],
                     ([esc(when(a, z)), esc(when(b, z)), esc(duration(b - a))]
                      for a, b in h.gaps)))  # fmt: skip
    titles = {"acknowledged": "Acknowledgements", "maintenance": "Maintenance windows",
              "alert": "Warnings", "disposition": "Dispositions"}  # fmt: skip
    for kind, title in titles.items():
        notes = [a for a in h.annotations if a.kind == kind]
        out.append(f"<h2>{esc(title)}</h2>")
        out.append(table(["at", "until", "what"],
                         ([esc(when(a.at, z)), esc(when(a.end, z) if a.end else ""),
                           esc(a.text)] for a in notes)))  # fmt: skip
    out.append("<h2>Calibration overdue or failed</h2>")
    flagged = [
        [esc(o.sensor_id), esc(when(o.start, z)), esc(when(o.end, z)),
         f'<span class="flag">{esc(o.reason)}</span>']
        for o in r.overdue
    ]  # fmt: skip
    out.append(table(["sensor", "from", "to", "reason"], flagged))
    out.append("<h2>Electronic signatures on dispositions</h2>")
    out.append(table(["record", "signature"],
                     ([esc(s.subject), esc(s.manifestation())] for s in r.signatures)))  # fmt: skip
    return "".join(out)


def flagged_on(r: UnitRecord, sensor_id: str, day: date) -> bool:
    """Whether the sensor's calibration was overdue or failed during part of the local day."""
    zone = ZoneInfo(r.history.unit.timezone)
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return any(o.sensor_id == sensor_id and o.start < end and o.end > start for o in r.overdue)


def _days(r: UnitRecord) -> str:
    flag = ' <span class="flag">(cal.)</span>'
    return '<h2 class="newpage">Daily record</h2>' + table(
        ["day", "sensor", "samples", "min °C", "mean °C", "max °C"],
        ([esc(d.day), esc(d.sensor_id) + (flag if flagged_on(r, d.sensor_id, d.day) else ""),
          esc(d.samples), temp(d.low), temp(d.mean), temp(d.high)] for d in r.days),
        numeric=frozenset({2, 3, 4, 5}),
    ) + '<p class="note">Days are the site\'s local days. (cal.): the sensor\'s calibration' \
        " was overdue or had failed during part of that day (see Calibration).</p>"  # fmt: skip


def unit_html(r: UnitRecord, *, generated: datetime) -> str:
    u = r.history.unit
    body = _summary(r) + "<h2>Chart</h2>" + unit_chart(r) + _days(r) + _events(r)
    return page_html(
        "Temperature record",
        body,
        subtitle=f"{u.name} ({u.location_id}), {u.site_name}",
        generated=f"{generated.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
    )


def site_html(records: list[UnitRecord], *, site: str, generated: datetime) -> str:
    """Every unit's record in one document, each unit starting on a new page."""
    parts = [
        f'<h2 class="{"newpage" if i else ""}">{esc(r.history.unit.name)}'
        f" ({esc(r.history.unit.location_id)})</h2>"
        + _summary(r) + unit_chart(r) + _days(r) + _events(r)
        for i, r in enumerate(records)
    ]  # fmt: skip
    return page_html(
        "Temperature records", "".join(parts) or '<p class="note">no storage units</p>',
        subtitle=site, generated=f"{generated.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
    )  # fmt: skip


def site_csv(records: list[UnitRecord]) -> str:
    """The units' CSV tables one after the other, a ``location_id`` column first."""
    out = io.StringIO()
    w = csv_writer(out)
    w.writerow(["location_id", *UNIT_COLUMNS])
    for r in records:
        w.writerows([text_cell(r.history.unit.location_id), *row] for row in _unit_rows(r))
    return out.getvalue()


def render_site(
    records: list[UnitRecord], fmt: Format, *, site_id: str, site: str, generated: datetime,
    start: datetime, end: datetime,
) -> Rendered:  # fmt: skip
    """The temperature records of every storage unit of a site over one period."""
    params = {"site_id": site_id, "start": _iso(start), "end": _iso(end),
              "location_ids": [r.history.unit.location_id for r in records]}  # fmt: skip
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"units-{site_id}")
    stem += f"-{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}"
    content = (
        print_pdf(site_html(records, site=site, generated=generated))
        if fmt == "pdf"
        else site_csv(records).encode()
    )
    return Rendered("unit", fmt, f"Temperature records {site}", f"{stem}.{fmt}", params, content)


UNIT_COLUMNS = ("record", "day_or_start", "end", "sensor_id", "samples", "min_degC",
                "mean_degC", "max_degC", "kind", "level", "text")  # fmt: skip


def unit_csv(r: UnitRecord) -> str:
    """One table: the daily rows, then every event of the period, a ``record`` column saying
    which; times in UTC (RFC 3339), days in the site's zone."""
    out = io.StringIO()
    w = csv_writer(out)
    w.writerow(UNIT_COLUMNS)
    w.writerows(_unit_rows(r))
    return out.getvalue()


def _unit_rows(r: UnitRecord) -> list[list[object]]:
    """The rows of ``unit_csv``, without its header."""
    days: list[list[object]] = [
        ["day", d.day.isoformat(), "", text_cell(d.sensor_id), d.samples, repr(d.low),
         repr(d.mean), repr(d.high), "", "", ""]
        for d in r.days
    ]  # fmt: skip
    excursions: list[list[object]] = [
        ["excursion", _iso(x.started_at), _iso(x.ended_at), text_cell(x.sensor_id), "", "", "",
         "" if x.peak_value is None else repr(x.peak_value), x.kind, x.level,
         f"excursion {x.excursion_id}"]
        for x in r.excursions
    ]  # fmt: skip
    gaps: list[list[object]] = [
        ["gap", _iso(a), _iso(b), "", "", "", "", "", "", "", ""] for a, b in r.history.gaps
    ]
    notes: list[list[object]] = [
        [n.kind, _iso(n.at), _iso(n.end), "", "", "", "", "", "", "", text_cell(n.text)]
        for n in r.history.annotations
        if n.kind != "calibration"  # written from ``overdue``, with the sensor in its own column
    ]
    signed: list[list[object]] = [
        ["signature", _iso(s.signed_at), "", "", "", "", "", "", s.meaning, "",
         text_cell(f"{s.subject}: {s.manifestation()}")]
        for s in r.signatures
    ]  # fmt: skip
    overdue: list[list[object]] = [
        ["calibration", _iso(o.start), _iso(o.end), text_cell(o.sensor_id), "", "", "", "",
         o.reason, "", ""]
        for o in r.overdue
    ]  # fmt: skip
    return days + excursions + gaps + notes + signed + overdue


def render_unit(r: UnitRecord, fmt: Format, *, generated: datetime) -> Rendered:
    h = r.history
    params = {"location_id": h.unit.location_id, "start": _iso(h.start), "end": _iso(h.end)}
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"unit-{h.unit.location_id}")
    stem += f"-{h.start:%Y%m%dT%H%M}-{h.end:%Y%m%dT%H%M}"
    content = print_pdf(unit_html(r, generated=generated)) if fmt == "pdf" else unit_csv(r).encode()
    return Rendered("unit", fmt, f"Temperature record {h.unit.name}", f"{stem}.{fmt}", params,
                    content)  # fmt: skip
