"""The dashboard's alarms section: alarms still escalating or held, and the planned suppression
windows (maintenance, defrost) now and ahead. Reads ``cloud.alarms`` tables; acknowledging goes
through the same buttons as the other alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.alarms.actions import Window, planned_windows
from cloud.web.pages import e, when


@dataclass(frozen=True)
class ActiveAlarm:
    alert_id: int
    kind: str
    severity: str
    location_id: str | None
    message: str
    policy: str | None
    step: int
    round: int
    held: str | None
    next_at: datetime | None
    sent: int
    failed: int


async def active_alarms(conn: AsyncConnection[TupleRow], *, limit: int = 50) -> list[ActiveAlarm]:
    cur = await conn.execute(
        "SELECT al.alert_id, al.kind, al.severity, al.location_id, al.message, a.policy, a.step,"
        " a.round, a.held, a.next_at,"
        " (SELECT count(*) FROM alarm_deliveries d WHERE d.alert_id = a.alert_id"
        "  AND d.status = 'sent'),"
        " (SELECT count(*) FROM alarm_deliveries d WHERE d.alert_id = a.alert_id"
        "  AND d.status = 'failed')"
        " FROM alarms a JOIN alerts al USING (alert_id)"
        " WHERE a.finished_at IS NULL AND (a.step >= 0 OR a.held IS NOT NULL)"
        " AND al.acknowledged_at IS NULL"
        " ORDER BY al.alert_id DESC LIMIT %s",
        (limit,),
    )
    return [ActiveAlarm(*row) for row in await cur.fetchall()]


def _alarm_row(a: ActiveAlarm) -> str:
    state = (
        f"held ({a.held.replace('_', ' ')}) until {when(a.next_at)}"
        if a.held
        else f"step {a.step + 1}" + (f", reminder {a.round}" if a.round else "")
        + (f", next {when(a.next_at)}" if a.next_at else "")
    )  # fmt: skip
    failed = f", {a.failed} failed" if a.failed else ""
    return (
        f'<tr class="{e(a.severity)}" data-alarm="{a.alert_id}"><td>{e(a.location_id or "—")}</td>'
        f"<td><b>{e(a.kind.replace('_', ' '))}</b> {e(a.message)}</td>"
        f"<td>{e(a.policy or '—')}: {state}</td><td>{a.sent} sent{failed}</td>"
        f'<td><input class="ack-note" maxlength="500" placeholder="comment (optional)"'
        f' aria-label="comment for alarm {a.alert_id}">'
        f'<button class="ack" data-alerts="{a.alert_id}">Acknowledge</button></td></tr>'
    )


def _window_row(w: Window, now: datetime) -> str:
    status = "now" if w.starts_at <= now else "planned"
    return (
        f'<tr data-window="{w.window_id}"><td>{e(w.location_id)}</td><td>{e(w.kind)}</td>'
        f"<td>{when(w.starts_at)} – {when(w.ends_at)}</td><td>{e(status)}</td>"
        f"<td>{e(w.reason)}</td><td>{e(w.created_by)}</td></tr>"
    )


def alarms_section(alarms: list[ActiveAlarm], windows: list[Window], now: datetime) -> str:
    escalating = (
        "<table class='alarms'><thead><tr><th>Unit</th><th>Alarm</th><th>Escalation</th>"
        "<th>Messages</th><th></th></tr></thead><tbody>"
        + "".join(_alarm_row(a) for a in alarms)
        + "</tbody></table>"
        if alarms
        else "<p class='empty'>No alarm is escalating.</p>"
    )
    planned = (
        "<h3>Planned suppression</h3><table class='suppressions'><thead><tr><th>Unit</th>"
        "<th>Kind</th><th>Window</th><th>Status</th><th>Reason</th><th>By</th></tr></thead>"
        "<tbody>" + "".join(_window_row(w, now) for w in windows) + "</tbody></table>"
        "<p class='note'>Alarms of these units wait for the window's end; readings are still"
        " stored and judged.</p>"
        if windows
        else "<h3>Planned suppression</h3><p class='empty'>No maintenance or defrost window.</p>"
    )
    return escalating + planned


async def render(conn: AsyncConnection[TupleRow], now: datetime) -> str:
    return alarms_section(await active_alarms(conn), await planned_windows(conn, now), now)
