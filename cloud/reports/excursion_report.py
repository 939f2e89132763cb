"""One excursion's report: facts, timeline, chart, acknowledgements, root cause and corrective
action, affected lots, dispositions and the e-signatures on them."""

from __future__ import annotations

from datetime import datetime

from cloud.reports.archive import Format, Rendered
from cloud.reports.document import esc, facts, page_html, table, temp, when
from cloud.reports.excursion_data import ExcursionReport
from cloud.reports.output import output
from cloud.reports.unit_report import unit_chart


def timeline(r: ExcursionReport) -> list[tuple[datetime, str]]:
    """Everything that happened, in time order."""
    f = r.facts
    events: list[tuple[datetime, str]] = [(f.started_at, f"{f.kind} excursion started")]
    if f.confirmed_at:
        events.append((f.confirmed_at, "confirmed (breach longer than the profile's delay)"))
    if f.escalated_at:
        events.append((f.escalated_at, "reached action level"))
    for a in r.alerts:
        events.append((a.at, f"alarm {a.kind} ({a.severity}): {a.message}"))
        if a.acknowledged_at:
            note = f": {a.ack_note}" if a.ack_note else ""
            events.append((a.acknowledged_at, f"alarm acknowledged by {a.acknowledged_by}{note}"))
    if f.ended_at:
        events.append((f.ended_at, "excursion ended"))
    if r.closure:
        events.append((r.closure.closed_at, f"closed by {r.closure.closed_by}: root cause"
                                            f" {r.closure.root_cause}"))  # fmt: skip
    events += [(d.at, f"lot {d.lot_id}: {d.movement} of {d.quantity} by {d.actor}")
               for d in r.decisions]  # fmt: skip
    events += [(s.signed_at, f"e-signature on {s.subject}: {s.manifestation()}")
               for s in r.signatures]  # fmt: skip
    return sorted(events, key=lambda e: e[0])


def _summary(r: ExcursionReport, zone: str) -> str:
    f = r.facts
    return facts([
        ("Excursion", esc(f"#{f.excursion_id}: {f.kind}, {f.level} level")),
        ("Storage unit", esc(f"{r.record.history.unit.name} ({f.location_id})")),
        ("Sensor", esc(f.sensor_id)),
        ("Started", esc(when(f.started_at, zone))),
        ("Ended", esc(when(f.ended_at, zone))),
        ("Peak", esc(f"{temp(f.peak_value)} °C")),
        ("Frozen", esc("yes" if f.frozen else "no")),
        ("Profile", esc(f.profile_id or "none")),
        ("Lots affected", esc(len(r.lots))),
    ])  # fmt: skip


def _closure(r: ExcursionReport, zone: str) -> str:
    c = r.closure
    if c is None:
        return '<p class="bad">Not closed: no root cause or corrective action recorded yet.</p>'
    return facts([
        ("Root cause", esc(c.root_cause + (f": {c.root_cause_detail}"
                                           if c.root_cause_detail else ""))),
        ("Corrective action", esc((c.corrective_action or "none")
                                  + (f": {c.corrective_action_detail}"
                                     if c.corrective_action_detail else ""))),
        ("Comment", esc(c.comment or "")),
        ("Closed by", esc(f"{c.closed_by}, {when(c.closed_at, zone)}")),
    ])  # fmt: skip


def excursion_html(r: ExcursionReport, *, generated: datetime) -> str:
    zone = r.record.history.unit.timezone
    body = [
        _summary(r, zone), "<h2>Chart (an hour either side)</h2>", unit_chart(r.record),
        '<h2 class="newpage">Timeline</h2>',
        table(["at", "what"], ([esc(when(t, zone)), esc(text)] for t, text in timeline(r))),
        "<h2>Acknowledgements</h2>",
        table(["at", "by", "comment", "alarm"],
              ([esc(when(a.acknowledged_at, zone)), esc(a.acknowledged_by), esc(a.ack_note or ""),
                esc(a.kind)] for a in r.alerts if a.acknowledged_at)),
        "<h2>Root cause and corrective action</h2>", _closure(r, zone),
        "<h2>Affected lots</h2>",
        table(["lot", "GTIN", "lot number", "product", "status now"],
              ([esc(x.lot_id), esc(x.gtin), esc(x.lot_number), esc(x.product), esc(x.status)]
               for x in r.lots)),
        "<h2>Dispositions</h2>",
        table(["at", "lot", "decision", "quantity", "by", "reason"],
              ([esc(when(d.at, zone)), esc(d.lot_id), esc(d.movement), esc(d.quantity),
                esc(d.actor), esc(d.reason or "")] for d in r.decisions)),
        "<h2>Electronic signatures</h2>",
        table(["record", "signature"],
              ([esc(s.subject), esc(s.manifestation())] for s in r.signatures)),
    ]  # fmt: skip
    return page_html(
        f"Excursion report #{r.facts.excursion_id}", "".join(body),
        subtitle=f"{r.record.history.unit.name} ({r.facts.location_id}),"
                 f" {r.record.history.unit.site_name}",
        generated=f"{when(generated, 'UTC')}",
    )  # fmt: skip


def render_excursion(r: ExcursionReport, fmt: Format, *, generated: datetime) -> Rendered:
    """CSV: the timeline, one event a row, then the lots and signatures as rows of their own."""

    def rows() -> tuple[list[str], list[list[object]]]:
        out: list[list[object]] = [["event", t, text] for t, text in timeline(r)]
        out += [["lot", None, f"{x.lot_id} {x.gtin} {x.lot_number} {x.status}"] for x in r.lots]
        out += [["signature", s.signed_at, f"{s.subject}: {s.manifestation()}"]
                for s in r.signatures]  # fmt: skip
        return ["record", "at", "text"], out

    x = r.facts.excursion_id
    return output(
        "excursion", fmt, title=f"Excursion report #{x}", stem=f"excursion-{x}",
        parameters={"excursion_id": x},
        html=lambda: excursion_html(r, generated=generated), table=rows,
    )  # fmt: skip
