"""Alerts: the alarm list (with acknowledge) and webhook delivery through an outbox.

An alert is written in the processor's transaction together with the excursion that raised it,
plus one ``alert_outbox`` row. Nothing leaves the process inside that transaction: after commit
the ``AlertDeliverer`` POSTs due alerts to the configured webhook, with an ``Idempotency-Key``
header (receivers may see an alert twice if an answer is lost), retries with exponential
backoff, and gives up after ``max_attempts`` (the alert stays in the alarm list either way).
A replayed batch raises nothing twice: every alert has a ``dedup_key``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import httpx
from psycopg import AsyncConnection, InterfaceError, OperationalError
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

log = logging.getLogger(__name__)

AlertKind = Literal[
    "excursion_opened",
    "excursion_escalated",
    "excursion_closed",
    "quarantine",
    "early_warning",
    "anomaly",
    "no_data",
    # Raised outside the cold-chain step (cloud/alarms/kinds.py says what each means).
    "sensor_never_reported",
    "gateway_offline",
    "outbox_filling",
    "battery_low",
    "signal_low",
    "clock_skew",
    "record_refused",
    "stream_stalled",
    "stream_resumed",
    "batch_set_aside",
    "channel_failing",
    # Sensor calibration (cloud/calibration/due.py)
    "calibration_due",
    "calibration_overdue",
]
Severity = Literal["info", "warning", "critical"]


class AlertSettings(BaseModel):
    """Webhook delivery: where, how long to wait, how often and how long to retry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    webhook_url: HttpUrl | None = None
    timeout: timedelta = timedelta(seconds=5)
    max_attempts: Annotated[int, Field(ge=1)] = 10
    backoff_initial: timedelta = timedelta(seconds=5)
    backoff_max: timedelta = timedelta(minutes=10)
    poll_interval: timedelta = timedelta(seconds=2)
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 50


@dataclass(frozen=True)
class NewAlert:
    kind: AlertKind
    severity: Severity
    at: datetime
    message: str
    dedup_key: str
    location_id: str | None = None
    sensor_id: str | None = None
    excursion_id: int | None = None
    detail: dict[str, Any] | None = None


async def raise_alert(conn: AsyncConnection[TupleRow], alert: NewAlert) -> int | None:
    """Records the alert and queues its webhook; None when ``dedup_key`` was already raised."""
    cur = await conn.execute(
        "INSERT INTO alerts (at, kind, severity, location_id, sensor_id, excursion_id, message,"
        " detail, dedup_key) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (dedup_key) DO NOTHING RETURNING alert_id",
        (
            alert.at,
            alert.kind,
            alert.severity,
            alert.location_id,
            alert.sensor_id,
            alert.excursion_id,
            alert.message,
            Jsonb(alert.detail or {}),
            alert.dedup_key,
        ),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    alert_id = int(row[0])
    await conn.execute("INSERT INTO alert_outbox (alert_id) VALUES (%s)", (alert_id,))
    return alert_id


ALERT_COLUMNS = (
    "alert_id, raised_at, at, kind, severity, location_id, sensor_id, excursion_id, message,"
    " detail, acknowledged_at, acknowledged_by, ack_note"
)
ALERT_FIELDS = [c.strip() for c in ALERT_COLUMNS.split(",")]


async def list_alerts(
    conn: AsyncConnection[TupleRow],
    *,
    unacknowledged: bool,
    location_id: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        f"SELECT {ALERT_COLUMNS} FROM alerts WHERE (NOT %s OR acknowledged_at IS NULL)"
        " AND (%s::text IS NULL OR location_id = %s) ORDER BY raised_at DESC, alert_id DESC"
        " LIMIT %s",
        (unacknowledged, location_id, location_id, limit),
    )
    return [dict(zip(ALERT_FIELDS, row, strict=True)) for row in await cur.fetchall()]


async def acknowledge(
    conn: AsyncConnection[TupleRow], alert_id: int, *, user: str, note: str | None
) -> dict[str, Any] | None:
    """Acknowledges once (a second acknowledge keeps the first); None when no such alert."""
    cur = await conn.execute(
        "UPDATE alerts SET acknowledged_at = coalesce(acknowledged_at, now()),"
        " acknowledged_by = coalesce(acknowledged_by, %s), ack_note = coalesce(ack_note, %s)"
        f" WHERE alert_id = %s RETURNING {ALERT_COLUMNS}",
        (user, note, alert_id),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    await conn.execute(
        "INSERT INTO audit_log (actor, action, subject, reason) VALUES (%s, 'acknowledge', %s, %s)",
        (user, f"alert:{alert_id}", note),
    )
    return dict(zip(ALERT_FIELDS, row, strict=True))


def _payload(alert: dict[str, Any]) -> dict[str, Any]:
    out = {k: alert[k] for k in ALERT_FIELDS if not k.startswith("ack")}
    for key in ("raised_at", "at"):
        out[key] = alert[key].astimezone(UTC).isoformat()
    return out


@dataclass(frozen=True)
class DeliveryResult:
    delivered: int
    failed: int
    given_up: int


class AlertDeliverer:
    """Posts due outbox rows to the webhook; run ``run(stop)`` beside the processor."""

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[TupleRow]],
        client: httpx.AsyncClient,
        settings: AlertSettings,
    ) -> None:
        self._pool = pool
        self._client = client
        self._settings = settings

    def backoff(self, attempts: int) -> timedelta:
        s = self._settings
        delay: timedelta = min(s.backoff_initial * (2 ** min(attempts - 1, 30)), s.backoff_max)
        return delay

    async def deliver_due(self, now: datetime) -> DeliveryResult:
        """One pass over the due outbox rows (locked, so deliverers share the work)."""
        if self._settings.webhook_url is None:
            return DeliveryResult(0, 0, 0)
        delivered = failed = given_up = 0
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"SELECT o.attempts, {', '.join('a.' + c for c in ALERT_FIELDS)}"
                " FROM alert_outbox o JOIN alerts a USING (alert_id)"
                " WHERE o.delivered_at IS NULL AND o.given_up_at IS NULL"
                " AND o.next_attempt_at <= %s ORDER BY o.next_attempt_at, o.alert_id"
                " LIMIT %s FOR UPDATE OF o SKIP LOCKED",
                (now, self._settings.batch_size),
            )
            for row in await cur.fetchall():
                alert = dict(zip(ALERT_FIELDS, row[1:], strict=True))
                error = await self._post(alert)
                attempts = int(row[0]) + 1
                if error is None:
                    delivered += 1
                    await conn.execute(
                        "UPDATE alert_outbox SET attempts = %s, delivered_at = %s,"
                        " last_error = NULL WHERE alert_id = %s",
                        (attempts, now, alert["alert_id"]),
                    )
                    continue
                failed += 1
                give_up = attempts >= self._settings.max_attempts
                given_up += give_up
                await conn.execute(
                    "UPDATE alert_outbox SET attempts = %s, last_error = %s,"
                    " next_attempt_at = %s, given_up_at = CASE WHEN %s THEN %s END"
                    " WHERE alert_id = %s",
                    (attempts, error, now + self.backoff(attempts), give_up, now,
                     alert["alert_id"]),
                )  # fmt: skip
        return DeliveryResult(delivered, failed, given_up)

    async def _post(self, alert: dict[str, Any]) -> str | None:
        """None when the webhook accepted the alert, else why not (kept for the next try)."""
        try:
            response = await self._client.post(
                str(self._settings.webhook_url),
                json=_payload(alert),
                headers={"Idempotency-Key": f"coldtrace-alert-{alert['alert_id']}"},
                timeout=self._settings.timeout.total_seconds(),
            )
        except httpx.HTTPError as err:
            return f"{type(err).__name__}: {err}"[:500]
        if response.is_success:
            return None
        return f"HTTP {response.status_code}"

    async def run(self, stop: asyncio.Event) -> None:
        """Delivers until ``stop`` is set."""
        while not stop.is_set():
            try:
                result = await self.deliver_due(datetime.now(UTC))
            except (OperationalError, InterfaceError, PoolTimeout) as err:
                log.warning("alert deliverer: database unavailable (%s); retrying", err)
            else:
                if result.failed:
                    log.warning("alert webhook: %s", result)
            try:
                await asyncio.wait_for(stop.wait(), self._settings.poll_interval.total_seconds())
            except TimeoutError:
                continue
