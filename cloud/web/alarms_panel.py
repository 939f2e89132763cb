"""The dashboard's alarms section: alarms still escalating or held, and the planned suppression
windows (maintenance, defrost) now and ahead. Reads ``cloud.alarms`` tables; acknowledging goes
through the same buttons as the other alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.alarms.actions import Window, planned_windows
from cloud.web.pages import ack_button, e, when
from cloud.web.permissions import Can
from cloud.web.wording import alarm_words


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
    location_name: str | None = None


async def active_alarms(conn: AsyncConnection[TupleRow], *, limit: int = 50) -> list[ActiveAlarm]:
    cur = await conn.execute(
        "SELECT al.alert_id, al.kind, al.severity, al.location_id, al.message, a.policy, a.step,"
        " a.round, a.held, a.next_at,"
        " (SELECT count(*) FROM alarm_deliveries d WHERE d.alert_id = a.alert_id"
        "  AND d.status = 'sent'),"
        " (SELECT count(*) FROM alarm_deliveries d WHERE d.alert_id = a.alert_id"
        "  AND d.status = 'failed'),"
        " (SELECT l.name FROM locations l WHERE l.location_id = al.location_id)"
        " FROM alarms a JOIN alerts al USING (alert_id)"
        " WHERE a.finished_at IS NULL AND (a.step >= 0 OR a.held IS NOT NULL)"
        " AND al.acknowledged_at IS NULL"
        " ORDER BY al.alert_id DESC LIMIT %s",
        (limit,),
    )
    return [ActiveAlarm(*row) for row in await cur.fetchall()]


def _alarm_row(a: ActiveAlarm, can: Can) -> str:
    state = (
        f"held ({a.held.replace('_', ' ')}) until {when(a.next_at)}"
        if a.held
        else f"step {a.step + 1}" + (f", reminder {a.round}" if a.round else "")
        + (f", next {when(a.next_at)}" if a.next_at else "")
    )  # fmt: skip
    failed = f", {a.failed} failed" if a.failed else ""
    words = alarm_words(a.kind)
    note = (
        f'<input class="ack-note" maxlength="500" placeholder="comment (optional)"'
        f' aria-label="comment for alarm {a.alert_id}">'
        if can.acknowledge
        else ""
    )
    return (
        f'<tr class="{e(a.severity)}" data-alarm="{a.alert_id}" data-kind="{e(a.kind)}">'
        f"<td>{e(a.location_name or a.location_id or '—')}</td>"
        f"<td><b title='{e(a.message)}'>{e(words.title)}</b>: {e(words.says)}"
        f"<div class='todo'>What to do: {e(words.todo)}</div></td>"
        f"<td>{e(a.policy or '—')}: {state}</td><td>{a.sent} sent{failed}</td>"
        f"<td>{note}{ack_button([a.alert_id], can)}</td></tr>"
    )


def _window_row(w: Window, now: datetime, names: dict[str, str]) -> str:
    status = "now" if w.starts_at <= now else "planned"
    return (
        f'<tr data-window="{w.window_id}"><td>{e(names.get(w.location_id, w.location_id))}</td>'
        f"<td>{e(w.kind)}</td>"
        f"<td>{when(w.starts_at)} – {when(w.ends_at)}</td><td>{e(status)}</td>"
        f"<td>{e(w.reason)}</td><td>{e(w.created_by)}</td></tr>"
    )


def alarms_section(
    alarms: list[ActiveAlarm],
    windows: list[Window],
    now: datetime,
    *,
    can: Can,
    names: dict[str, str] | None = None,
) -> str:
    """``names``: location names by id (the id shows where one is missing)."""
    names = names or {}
    escalating = (
        "<table class='alarms'><thead><tr><th>Unit</th><th>Alarm</th><th>Escalation</th>"
        "<th>Messages</th><th></th></tr></thead><tbody>"
        + "".join(_alarm_row(a, can) for a in alarms)
        + "</tbody></table>"
        if alarms
        else "<p class='empty'>No alarm is escalating.</p>"
    )
    planned = (
        "<h3>Planned suppression</h3><table class='suppressions'><thead><tr><th>Unit</th>"
        "<th>Kind</th><th>Window</th><th>Status</th><th>Reason</th><th>By</th></tr></thead>"
        "<tbody>" + "".join(_window_row(w, now, names) for w in windows) + "</tbody></table>"
        "<p class='note'>Alarms of these units wait for the window's end; readings are still"
        " stored and judged.</p>"
        if windows
        else "<h3>Planned suppression</h3><p class='empty'>No maintenance or defrost window.</p>"
    )
    return escalating + planned


async def render(conn: AsyncConnection[TupleRow], now: datetime, can: Can) -> str:
    windows = await planned_windows(conn, now)
    cur = await conn.execute(
        "SELECT location_id, name FROM locations WHERE location_id = ANY(%s)",
        ([w.location_id for w in windows],),
    )
    names = {str(i): str(n) for i, n in await cur.fetchall()}
    return alarms_section(await active_alarms(conn), windows, now, can=can, names=names)
