"""Scheduled reports: daily, weekly or monthly per site, sent through an alarm channel.

``run_schedules`` is the ``report_schedules`` job. For every enabled schedule it makes the
report of the last complete period once (the delivery row, keyed by schedule and period end,
is written in the same transaction as the archived report), then sends every delivery not yet
sent, at most ``MAX_ATTEMPTS`` times (one attempt per run, so a mail server that is down is
retried on the next runs). A report is made as ``schedule:<id>``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.auth.service import audit
from cloud.reports import ReportInputError
from cloud.reports.archive import Format, Rendered, fetch, store
from cloud.reports.calibration_report import calibration_status_report, render_calibration
from cloud.reports.mail import Outgoing, send_report
from cloud.reports.mkt_report import monthly_mkt, render_mkt
from cloud.reports.periods import Frequency, last_complete
from cloud.reports.unit_data import unit_record
from cloud.reports.unit_report import render_site, render_unit

MAX_ATTEMPTS = 5
ScheduledKind = Literal["unit", "mkt", "calibration"]


@dataclass(frozen=True)
class Schedule:
    schedule_id: int
    site_id: str
    kind: ScheduledKind
    frequency: Frequency
    location_id: str | None
    format: Format
    channel: str
    created_by: str
    created_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True)
class JobSettings:
    """What the job needs from the service's settings."""

    default_silence: timedelta
    calibration_lead: timedelta
    public_url: str
    send_timeout: timedelta


_COLUMNS = (
    "schedule_id, site_id, kind, frequency, location_id, format, channel, created_by,"
    " created_at, disabled_at"
)


async def create(
    conn: AsyncConnection[TupleRow], values: dict[str, Any], *, actor: str
) -> Schedule:
    """A new schedule (audited); refuses an unknown site, unit or channel."""
    cur = await conn.execute(
        "SELECT s.timezone, EXISTS (SELECT 1 FROM alarm_channels c WHERE c.site_id = s.site_id"
        " AND c.name = %(channel)s), %(loc)s::text IS NULL OR EXISTS (SELECT 1 FROM locations l"
        " WHERE l.location_id = %(loc)s AND l.site_id = s.site_id)"
        " FROM sites s WHERE s.site_id = %(site)s",
        {"site": values["site_id"], "channel": values["channel"], "loc": values["location_id"]},
    )
    row = await cur.fetchone()
    if row is None:
        raise ReportInputError(f"no site {values['site_id']!r}")
    if not row[1]:
        raise ReportInputError(f"no alarm channel {values['channel']!r} at this site")
    if not row[2]:
        raise ReportInputError(f"no storage unit {values['location_id']!r} at this site")
    cur = await conn.execute(
        "INSERT INTO report_schedules (site_id, kind, frequency, location_id, format, channel,"
        f" created_by) VALUES (%(site_id)s, %(kind)s, %(frequency)s, %(location_id)s,"
        f" %(format)s, %(channel)s, %(actor)s) RETURNING {_COLUMNS}",
        {**values, "actor": actor},
    )
    made = await cur.fetchone()
    assert made is not None
    schedule = Schedule(*made)
    await audit(conn, actor=actor, action="report_schedule.create",
                subject=f"report_schedule:{schedule.schedule_id}", reason=None,
                detail=dict(values))  # fmt: skip
    return schedule


async def disable(conn: AsyncConnection[TupleRow], schedule_id: int, *, actor: str) -> Schedule:
    cur = await conn.execute(
        "UPDATE report_schedules SET disabled_at = coalesce(disabled_at, now())"
        f" WHERE schedule_id = %s RETURNING {_COLUMNS}",
        (schedule_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise ReportInputError(f"no report schedule {schedule_id}")
    await audit(conn, actor=actor, action="report_schedule.disable",
                subject=f"report_schedule:{schedule_id}", reason=None)  # fmt: skip
    return Schedule(*row)


async def listing(conn: AsyncConnection[TupleRow]) -> list[Schedule]:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM report_schedules ORDER BY schedule_id")
    return [Schedule(*r) for r in await cur.fetchall()]


# the site's storage units: its locations with a storage profile (as the monthly MKT's areas)
_UNITS_SQL = """
SELECT l.location_id, s.name FROM locations l JOIN sites s USING (site_id)
WHERE l.site_id = %s AND l.profile_id IS NOT NULL ORDER BY l.location_id
"""


async def _render(
    conn: AsyncConnection[TupleRow], s: Schedule, period: tuple[datetime, datetime],
    now: datetime, cfg: JobSettings,
) -> Rendered:  # fmt: skip
    start, end = period
    if s.kind == "unit" and s.location_id is None:
        cur = await conn.execute(_UNITS_SQL, (s.site_id,))
        units = await cur.fetchall()
        records = [await unit_record(conn, loc, start=start, end=end,
                                     default_silence=cfg.default_silence)
                   for loc, _ in units]  # fmt: skip
        site = units[0][1] if units else s.site_id
        return await asyncio.to_thread(render_site, records, s.format, site_id=s.site_id,
                                       site=site, generated=now, start=start, end=end)  # fmt: skip
    if s.kind == "unit":
        assert s.location_id is not None
        record = await unit_record(conn, s.location_id, start=start, end=end,
                                   default_silence=cfg.default_silence)  # fmt: skip
        return await asyncio.to_thread(render_unit, record, s.format, generated=now)
    if s.kind == "mkt":
        month = date(start.year, start.month, 1)
        figures = await monthly_mkt(conn, s.site_id, month, now=end,
                                    default_silence=cfg.default_silence)  # fmt: skip
        return await asyncio.to_thread(render_mkt, figures, s.format, generated=now)
    status = await calibration_status_report(conn, now=now, lead=cfg.calibration_lead,
                                             site_id=s.site_id)  # fmt: skip
    return await asyncio.to_thread(render_calibration, status, s.format, generated=now)


async def _make_due(conn: AsyncConnection[TupleRow], now: datetime, cfg: JobSettings) -> int:
    cur = await conn.execute(
        f"SELECT {', '.join('r.' + c.strip() for c in _COLUMNS.split(','))}, s.timezone"
        " FROM report_schedules r JOIN sites s USING (site_id) WHERE r.disabled_at IS NULL"
    )
    schedules = await cur.fetchall()
    await conn.commit()  # each period's report below is a transaction of its own
    made = 0
    for row in schedules:
        s, zone = Schedule(*row[:-1]), row[-1]
        period = last_complete(s.frequency, now, zone)
        async with conn.transaction():
            cur = await conn.execute(
                "SELECT 1 FROM report_deliveries WHERE schedule_id = %s AND period_end = %s",
                (s.schedule_id, period[1]),
            )
            if await cur.fetchone() is not None:
                continue
            rendered = await _render(conn, s, period, now, cfg)
            archived = await store(conn, rendered, created_by=f"schedule:{s.schedule_id}")
            await conn.execute(
                "INSERT INTO report_deliveries (schedule_id, period_start, period_end, report_id)"
                " VALUES (%s, %s, %s, %s)",
                (s.schedule_id, period[0], period[1], archived.report_id),
            )
            made += 1
    return made


async def _send_unsent(conn: AsyncConnection[TupleRow], cfg: JobSettings) -> tuple[int, int]:
    cur = await conn.execute(
        "SELECT d.schedule_id, d.period_end, d.report_id, c.url FROM report_deliveries d"
        " JOIN report_schedules r USING (schedule_id)"
        " JOIN alarm_channels c ON c.site_id = r.site_id AND c.name = r.channel"
        " WHERE d.sent_at IS NULL AND d.attempts < %s AND c.disabled_at IS NULL"
        " ORDER BY d.period_end",
        (MAX_ATTEMPTS,),
    )
    rows = await cur.fetchall()
    await conn.commit()
    sent = failed = 0
    for schedule_id, period_end, report_id, url in rows:
        archived, content = await fetch(conn, report_id)
        await conn.commit()
        link = f"{cfg.public_url.rstrip('/')}/v1/reports/{report_id}/content"
        message = Outgoing(
            title=f"coldtrace report: {archived.title}",
            body=(f"{archived.title}\nfile: {archived.filename}\nsha256: {archived.sha256}\n"
                  f"archived as report {report_id}; fetch it again (unchanged): {link}\n"),
            filename=archived.filename, media_type=archived.media_type, content=content,
        )  # fmt: skip
        outcome = await send_report(url, message, send_timeout=cfg.send_timeout)
        async with conn.transaction():
            await conn.execute(
                "UPDATE report_deliveries SET attempts = attempts + 1,"
                " sent_at = CASE WHEN %s THEN now() END, last_error = %s"
                " WHERE schedule_id = %s AND period_end = %s",
                (outcome.ok, outcome.error, schedule_id, period_end),
            )
        sent, failed = (sent + 1, failed) if outcome.ok else (sent, failed + 1)
    return sent, failed


async def run_schedules(
    conn: AsyncConnection[TupleRow], now: datetime, cfg: JobSettings
) -> dict[str, int]:
    """Makes the reports that are due and sends what is unsent; counts for the job log."""
    await conn.commit()
    made = await _make_due(conn, now, cfg)
    sent, failed = await _send_unsent(conn, cfg)
    return {"made": made, "sent": sent, "failed": failed}
