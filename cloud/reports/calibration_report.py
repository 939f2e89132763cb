"""The calibration status of every sensor (of a site), with each sensor's calibration history.

The statuses are ``cloud.calibration.store.statuses``, the function behind
``GET /v1/calibrations``, with the same lead time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.calibration.core import Calibration
from cloud.calibration.store import SensorStatus, records, statuses
from cloud.reports.archive import Format, Rendered
from cloud.reports.document import esc, facts, page_html, table, when
from cloud.reports.output import output

WORDS = {"valid": "valid", "due_soon": "due soon", "overdue": "OVERDUE", "failed": "FAILED",
         "unknown": "no record"}  # fmt: skip


@dataclass(frozen=True)
class CalibrationStatusReport:
    as_of: datetime
    site_id: str | None
    lead: timedelta
    sensors: list[SensorStatus]
    history: dict[str, list[Calibration]]


async def calibration_status_report(
    conn: AsyncConnection[TupleRow], *, now: datetime, lead: timedelta, site_id: str | None
) -> CalibrationStatusReport:
    found = await statuses(conn, now=now, lead=lead, site_id=site_id)
    history = await records(conn, [s.sensor_id for s in found])
    return CalibrationStatusReport(now, site_id, lead, found, dict(history))


def _row(s: SensorStatus) -> list[str]:
    last, st = s.status.last, s.status.state
    css = "bad" if st in ("overdue", "failed") else "flag" if st == "due_soon" else ""
    return [
        esc(s.sensor_id), esc(s.description or ""), esc(s.location_id or "not mounted"),
        f'<span class="{css}">{esc(WORDS[st])}</span>',
        esc(last.calibrated_on if last else ""), esc(last.certificate_ref if last else ""),
        esc(last.result if last else ""),
        esc("" if last is None or last.offset_c is None else f"{last.offset_c:+.2f}"),
        esc(last.next_due if last else ""),
        esc("" if s.status.days_left is None else s.status.days_left),
    ]  # fmt: skip


def calibration_html(r: CalibrationStatusReport, *, generated: datetime) -> str:
    counts = {w: sum(1 for s in r.sensors if s.status.state == k) for k, w in WORDS.items()}
    body = [
        facts([("Site", esc(r.site_id or "all sites")), ("As of", esc(when(r.as_of, "UTC"))),
               ("Due soon means", esc(f"within {r.lead.days} days of the due date")),
               *((k, esc(v)) for k, v in counts.items())]),
        "<h2>Sensors</h2>",
        table(["sensor", "description", "location", "status", "calibrated", "certificate",
               "result", "offset °C", "next due", "days left"],
              (_row(s) for s in r.sensors), numeric=frozenset({7, 9})),
        '<h2 class="newpage">Calibration history</h2>',
        table(["sensor", "calibrated", "certificate", "result", "offset °C", "uncertainty °C",
               "next due", "recorded by", "note"],
              ([esc(c.sensor_id), esc(c.calibrated_on), esc(c.certificate_ref), esc(c.result),
                esc("" if c.offset_c is None else f"{c.offset_c:+.2f}"),
                esc("" if c.uncertainty_c is None else f"{c.uncertainty_c:.2f}"),
                esc(c.next_due), esc(c.recorded_by), esc(c.note or "")]
               for s in r.sensors for c in r.history.get(s.sensor_id, []))),
    ]  # fmt: skip
    return page_html(
        "Sensor calibration status", "".join(body),
        subtitle=r.site_id or "all sites", generated=when(generated, "UTC"),
    )  # fmt: skip


def render_calibration(r: CalibrationStatusReport, fmt: Format, *, generated: datetime) -> Rendered:
    def rows() -> tuple[list[str], list[list[object]]]:
        header = ["sensor_id", "location_id", "site_id", "state", "days_left", "calibrated_on",
                  "certificate_ref", "result", "offset_degC", "next_due"]  # fmt: skip
        out: list[list[object]] = []
        for s in r.sensors:
            c = s.status.last
            out.append([s.sensor_id, s.location_id, s.site_id, s.status.state,
                        s.status.days_left, c and c.calibrated_on, c and c.certificate_ref,
                        c and c.result, c and c.offset_c, c and c.next_due])  # fmt: skip
        return header, out

    return output(
        "calibration", fmt, title="Sensor calibration status",
        stem=f"calibration-{r.site_id or 'all'}-{r.as_of:%Y%m%d}",
        parameters={"site_id": r.site_id, "as_of": r.as_of.isoformat()},
        html=lambda: calibration_html(r, generated=generated), table=rows,
    )  # fmt: skip
