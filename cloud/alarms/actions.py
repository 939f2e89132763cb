"""What people do with alarms: acknowledge (also through a one-time link), plan suppression
windows, and close an excursion with its root cause and corrective action. Each is audited.

Acknowledging an alert also acknowledges the earlier unacknowledged alerts of the same excursion
(whoever answers the "action level" page has seen the "alert level" one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from cloud.alarms import ActionRefusedError, NotFoundError
from cloud.alarms.store import token_hash

ROOT_CAUSES = (
    "equipment_failure", "power_outage", "door_left_open", "defrost_cycle", "overloading",
    "sensor_fault", "transport_delay", "human_error", "planned_maintenance", "other",
)  # fmt: skip
CORRECTIVE_ACTIONS = (
    "equipment_repaired", "product_moved", "setpoint_adjusted", "sensor_replaced",
    "staff_retrained", "procedure_changed", "supplier_informed", "no_action_needed", "other",
)  # fmt: skip
RootCause = Literal[
    "equipment_failure", "power_outage", "door_left_open", "defrost_cycle", "overloading",
    "sensor_fault", "transport_delay", "human_error", "planned_maintenance", "other",
]  # fmt: skip
CorrectiveAction = Literal[
    "equipment_repaired", "product_moved", "setpoint_adjusted", "sensor_replaced",
    "staff_retrained", "procedure_changed", "supplier_informed", "no_action_needed", "other",
]  # fmt: skip


async def _audit(
    conn: AsyncConnection[TupleRow],
    actor: str,
    action: str,
    subject: str,
    *,
    reason: str | None,
    detail: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, action, subject, reason, detail)"
        " VALUES (%s, %s, %s, %s, %s)",
        (actor, action, subject, reason, Jsonb(detail)),
    )


async def acknowledge_alert(
    conn: AsyncConnection[TupleRow], alert_id: int, *, actor: str, comment: str | None, via: str
) -> list[int]:
    """Acknowledges the alert and the earlier open alerts of its excursion; returns their ids.

    The first acknowledgement of each alert stands; acknowledging again changes nothing.
    """
    cur = await conn.execute(
        "SELECT excursion_id FROM alerts WHERE alert_id = %s FOR UPDATE", (alert_id,)
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"no alert {alert_id}")
    cur = await conn.execute(
        "UPDATE alerts SET acknowledged_at = now(), acknowledged_by = %s, ack_note = %s"
        " WHERE acknowledged_at IS NULL AND (alert_id = %s OR (%s::bigint IS NOT NULL"
        " AND excursion_id = %s AND alert_id < %s)) RETURNING alert_id",
        (actor, comment, alert_id, row[0], row[0], alert_id),
    )
    done = sorted(int(r[0]) for r in await cur.fetchall())
    for acked in done:
        await _audit(conn, actor, "acknowledge", f"alert:{acked}", reason=comment,
                     detail={"via": via})  # fmt: skip
    # Escalation stops at the worker's next look; make that look now.
    await conn.execute(
        "UPDATE alarms SET next_at = now() WHERE alert_id = ANY(%s) AND finished_at IS NULL",
        (done,),
    )
    return done


@dataclass(frozen=True)
class LinkTarget:
    alert_id: int
    contact: str | None
    message: str
    acknowledged_by: str | None


async def link_target(
    conn: AsyncConnection[TupleRow], token: str, now: datetime, ttl: timedelta
) -> LinkTarget:
    """The alert a one-time link is for; refused when unknown, used or expired."""
    cur = await conn.execute(
        "SELECT d.alert_id, d.contact, a.message, a.acknowledged_by, d.ack_token_used_at,"
        " d.created_at FROM alarm_deliveries d JOIN alerts a USING (alert_id)"
        " WHERE d.ack_token_hash = %s",
        (token_hash(token),),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFoundError("this acknowledgement link is not known")
    if row[4] is not None:
        raise ActionRefusedError("this acknowledgement link has been used already")
    if row[5] + ttl < now:
        raise ActionRefusedError("this acknowledgement link has expired; use the alarm list")
    return LinkTarget(int(row[0]), row[1], row[2], row[3])


async def acknowledge_by_link(
    conn: AsyncConnection[TupleRow],
    token: str,
    *,
    comment: str | None,
    now: datetime,
    ttl: timedelta,
) -> tuple[LinkTarget, list[int]]:
    """Uses a one-time link: the acknowledgement is recorded as the contact it was sent to."""
    target = await link_target(conn, token, now, ttl)
    cur = await conn.execute(
        "UPDATE alarm_deliveries SET ack_token_used_at = %s WHERE ack_token_hash = %s"
        " AND ack_token_used_at IS NULL",
        (now, token_hash(token)),
    )
    if cur.rowcount == 0:  # another request used it between our read and this write
        raise ActionRefusedError("this acknowledgement link has been used already")
    actor = f"contact:{target.contact}" if target.contact else "link"
    done = await acknowledge_alert(
        conn, target.alert_id, actor=actor, comment=comment, via="one-time link"
    )
    return target, done


# Suppression windows -------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    window_id: int
    location_id: str
    kind: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime
    cancelled_at: datetime | None
    cancelled_by: str | None


_WINDOW_COLUMNS = (
    "window_id, location_id, kind, starts_at, ends_at, reason, created_by, created_at,"
    " cancelled_at, cancelled_by"
)
MAX_WINDOW = timedelta(days=7)


async def plan_window(
    conn: AsyncConnection[TupleRow],
    location_id: str,
    *,
    kind: str,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    actor: str,
    now: datetime,
) -> Window:
    """Plans a window in which the unit's alarms wait; readings are still stored and judged."""
    if ends_at <= starts_at:
        raise ActionRefusedError("a window must end after it starts")
    if ends_at - starts_at > MAX_WINDOW:
        raise ActionRefusedError(f"a window may last at most {MAX_WINDOW.days} days")
    if ends_at <= now:
        raise ActionRefusedError("a window that has already ended cannot be planned")
    cur = await conn.execute("SELECT 1 FROM locations WHERE location_id = %s", (location_id,))
    if await cur.fetchone() is None:
        raise NotFoundError(f"no location {location_id!r}")
    cur = await conn.execute(
        "INSERT INTO alarm_suppressions (location_id, kind, starts_at, ends_at, reason,"
        f" created_by) VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_WINDOW_COLUMNS}",
        (location_id, kind, starts_at, ends_at, reason, actor),
    )
    row = await cur.fetchone()
    assert row is not None
    window = Window(*row)
    detail = {"window_id": window.window_id, "kind": kind, "starts_at": starts_at.isoformat(),
              "ends_at": ends_at.isoformat()}  # fmt: skip
    await _audit(conn, actor, "suppression_planned", f"location:{location_id}", reason=reason,
                 detail=detail)  # fmt: skip
    return window


async def cancel_window(
    conn: AsyncConnection[TupleRow], window_id: int, *, actor: str, reason: str | None
) -> Window:
    """Ends a window now (or before it starts); held alarms are looked at again at once."""
    cur = await conn.execute(
        "UPDATE alarm_suppressions SET cancelled_at = now(), cancelled_by = %s"
        f" WHERE window_id = %s AND cancelled_at IS NULL RETURNING {_WINDOW_COLUMNS}",
        (actor, window_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"no open suppression window {window_id}")
    window = Window(*row)
    await conn.execute(
        "UPDATE alarms SET next_at = now() WHERE held = 'suppressed' AND finished_at IS NULL"
    )
    await _audit(conn, actor, "suppression_cancelled", f"location:{window.location_id}",
                 reason=reason, detail={"window_id": window_id})  # fmt: skip
    return window


async def list_windows(
    conn: AsyncConnection[TupleRow],
    *,
    location_id: str | None,
    active_at: datetime | None,
    limit: int,
) -> list[Window]:
    cur = await conn.execute(
        f"SELECT {_WINDOW_COLUMNS} FROM alarm_suppressions"
        " WHERE (%s::text IS NULL OR location_id = %s) AND (%s::timestamptz IS NULL OR"
        " (cancelled_at IS NULL AND starts_at <= %s AND ends_at > %s))"
        " ORDER BY starts_at DESC, window_id DESC LIMIT %s",
        (location_id, location_id, active_at, active_at, active_at, limit),
    )
    return [Window(*row) for row in await cur.fetchall()]


async def planned_windows(conn: AsyncConnection[TupleRow], now: datetime) -> list[Window]:
    """Windows not cancelled and not yet over, soonest first (the dashboard's list)."""
    cur = await conn.execute(
        f"SELECT {_WINDOW_COLUMNS} FROM alarm_suppressions"
        " WHERE cancelled_at IS NULL AND ends_at > %s ORDER BY starts_at, window_id LIMIT 100",
        (now,),
    )
    return [Window(*row) for row in await cur.fetchall()]


# Closing an excursion ------------------------------------------------------------------------


@dataclass(frozen=True)
class Closure:
    excursion_id: int
    root_cause: str
    root_cause_detail: str | None
    corrective_action: str | None
    corrective_action_detail: str | None
    comment: str | None
    closed_by: str
    closed_at: datetime


_CLOSURE_COLUMNS = (
    "excursion_id, root_cause, root_cause_detail, corrective_action, corrective_action_detail,"
    " comment, closed_by, closed_at"
)


def _closed_already(excursion_id: int) -> str:
    return f"excursion {excursion_id} has been closed already"


def check_closure(
    excursion_id: int,
    level: str,
    *,
    ended: bool,
    closed: bool,
    root_cause: str,
    root_cause_detail: str | None,
    corrective_action: str | None,
    corrective_action_detail: str | None,
) -> None:
    """The closing rules (pure): only an ended excursion, once; an action-level one needs a
    corrective action, and "other" needs words. Raises ``ActionRefusedError`` with the reason.

    >>> check_closure(7, "action", ended=True, closed=False, root_cause="power_outage",
    ...               root_cause_detail=None, corrective_action=None,
    ...               corrective_action_detail=None)
    Traceback (most recent call last):
    cloud.alarms.ActionRefusedError: an action-level excursion needs a corrective action
    """
    if closed:
        raise ActionRefusedError(_closed_already(excursion_id))
    if not ended:
        raise ActionRefusedError("the excursion is still open: it can be closed once it ends")
    if level == "action" and corrective_action is None:
        raise ActionRefusedError("an action-level excursion needs a corrective action")
    if root_cause == "other" and not (root_cause_detail or "").strip():
        raise ActionRefusedError("root cause 'other' needs a description")
    if corrective_action == "other" and not (corrective_action_detail or "").strip():
        raise ActionRefusedError("corrective action 'other' needs a description")


async def close_excursion(
    conn: AsyncConnection[TupleRow],
    excursion_id: int,
    *,
    root_cause: str,
    root_cause_detail: str | None,
    corrective_action: str | None,
    corrective_action_detail: str | None,
    comment: str | None,
    actor: str,
) -> Closure:
    """Records why an excursion happened and what was done; an action-level excursion needs
    both, "other" needs words, and only an ended excursion can be closed, once."""
    cur = await conn.execute(
        "SELECT level, ended_at FROM excursions WHERE excursion_id = %s FOR UPDATE",
        (excursion_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"no excursion {excursion_id}")
    level, ended_at = row
    check_closure(
        excursion_id, str(level), ended=ended_at is not None, closed=False,
        root_cause=root_cause, root_cause_detail=root_cause_detail,
        corrective_action=corrective_action, corrective_action_detail=corrective_action_detail,
    )  # fmt: skip
    cur = await conn.execute(
        "INSERT INTO excursion_closures (excursion_id, root_cause, root_cause_detail,"
        " corrective_action, corrective_action_detail, comment, closed_by) VALUES"
        " (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (excursion_id) DO NOTHING"
        f" RETURNING {_CLOSURE_COLUMNS}",
        (excursion_id, root_cause, root_cause_detail, corrective_action,
         corrective_action_detail, comment, actor),
    )  # fmt: skip
    row = await cur.fetchone()
    if row is None:
        raise ActionRefusedError(_closed_already(excursion_id))
    closure = Closure(*row)
    await _audit(conn, actor, "excursion_closed", f"excursion:{excursion_id}", reason=comment,
                 detail={"root_cause": root_cause, "root_cause_detail": root_cause_detail,
        "corrective_action": corrective_action,
        "corrective_action_detail": corrective_action_detail, "level": level})  # fmt: skip
    return closure


async def get_closure(conn: AsyncConnection[TupleRow], excursion_id: int) -> Closure | None:
    cur = await conn.execute(
        f"SELECT {_CLOSURE_COLUMNS} FROM excursion_closures WHERE excursion_id = %s",
        (excursion_id,),
    )
    row = await cur.fetchone()
    return None if row is None else Closure(*row)
