"""The calibration job: ``calibration_due`` within the lead time of a due date, and
``calibration_overdue`` once it has passed (or the last calibration failed).

Each alarm names the calibration record it is about in its ``dedup_key``, so it is raised once
per record however often the job runs: a new calibration record (a new due date) starts afresh.
The alerts go through ``raise_alert`` like every other kind, and the alarm trigger routes them
to the site's people and channels.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.calibration.store import SensorStatus, statuses
from cloud.coldchain.alerts import AlertKind, NewAlert, raise_alert


def _alert(s: SensorStatus, now: datetime) -> NewAlert | None:
    last, state = s.status.last, s.status.state
    if last is None or state in ("valid", "unknown"):
        return None
    name = s.description or s.sensor_id
    detail = {"site_id": s.site_id, "calibration_id": last.calibration_id,
              "certificate_ref": last.certificate_ref, "next_due": str(last.next_due)}  # fmt: skip
    kind: AlertKind
    if state == "due_soon":
        message = (f"sensor {name}: calibration due on {last.next_due}"
                   f" ({s.status.days_left} days), certificate {last.certificate_ref}")  # fmt: skip
        kind, key = "calibration_due", f"calibration_due:{s.sensor_id}:{last.calibration_id}"
    else:
        why = "failed" if state == "failed" else f"was due on {last.next_due}"
        message = f"sensor {name}: calibration {why}; its readings are flagged"
        kind = "calibration_overdue"
        key = f"calibration_overdue:{s.sensor_id}:{last.calibration_id}"
    return NewAlert(kind=kind, severity="warning", at=now, message=message, dedup_key=key,
                    location_id=s.location_id, sensor_id=s.sensor_id, detail=detail)  # fmt: skip


async def check_calibrations(
    conn: AsyncConnection[TupleRow], now: datetime, *, lead: timedelta
) -> dict[str, int]:
    """Raises the alarms due as of ``now``, in one transaction; counts of those newly raised."""
    raised: dict[str, int] = {}
    async with conn.transaction():
        for s in await statuses(conn, now=now, lead=lead):
            alert = _alert(s, now)
            if alert is not None and await raise_alert(conn, alert) is not None:
                raised[alert.kind] = raised.get(alert.kind, 0) + 1
    return raised
