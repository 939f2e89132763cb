"""SQL of the escalation state (``alarms``), the delivery outbox and its attempt log, and the
facts a message needs."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.alarms.escalation import Decision
from cloud.alarms.message import AlarmFacts, Limits, LotLine


@dataclass(frozen=True)
class DueAlarm:
    alert_id: int
    step: int
    round: int
    held: str | None
    kind: str
    severity: str
    location_id: str | None
    excursion_id: int | None
    acknowledged: bool
    site_id: str | None
    cleared: bool
    raised_at: datetime


_DUE_SQL = """
SELECT a.alert_id, a.step, a.round, a.held, al.kind, al.severity, al.location_id, al.excursion_id,
       al.acknowledged_at IS NOT NULL OR EXISTS (
           SELECT 1 FROM alerts x WHERE al.excursion_id IS NOT NULL
             AND x.excursion_id = al.excursion_id AND x.alert_id > al.alert_id
             AND x.acknowledged_at IS NOT NULL),
       coalesce(a.site_id, l.site_id, s.site_id, g.site_id),
       CASE WHEN al.excursion_id IS NOT NULL THEN e.ended_at IS NOT NULL OR EXISTS (
                -- an alert-level page is superseded by its excursion's action-level one
                SELECT 1 FROM alerts x WHERE x.excursion_id = al.excursion_id
                  AND x.alert_id > al.alert_id AND x.kind = 'excursion_escalated')
            -- over once the gateway is heard from again: a batch, or any request with its token
            WHEN al.kind = 'gateway_offline' THEN g.last_contact_at > al.at OR EXISTS (
                SELECT 1 FROM gateway_streams gs
                WHERE gs.gateway_id = al.detail->>'gateway_id' AND gs.updated_at > al.at)
            -- a stall is over once its batch is processed or set aside
            WHEN al.kind = 'stream_stalled' THEN NOT EXISTS (
                SELECT 1 FROM processor_streams ps
                WHERE ps.gateway_id = al.detail->>'gateway_id'
                  AND ps.boot_id::text = al.detail->>'boot_id' AND ps.stalled_since IS NOT NULL
                  AND ps.failing_batch_id::text = al.detail->>'batch_id')
            ELSE false END,
       al.raised_at
FROM alarms a
JOIN alerts al USING (alert_id)
LEFT JOIN locations l ON l.location_id = al.location_id
LEFT JOIN sites s ON s.site_id = al.detail->>'site_id'
LEFT JOIN gateways g ON g.gateway_id = al.detail->>'gateway_id'
LEFT JOIN excursions e ON e.excursion_id = al.excursion_id
WHERE a.next_at <= %s AND a.finished_at IS NULL
ORDER BY a.next_at, a.alert_id
LIMIT %s
FOR UPDATE OF a SKIP LOCKED
"""


async def claim_due_alarms(
    conn: AsyncConnection[TupleRow], now: datetime, limit: int
) -> list[DueAlarm]:
    """Due alarms, locked for this transaction (other processes skip them)."""
    cur = await conn.execute(_DUE_SQL, (now, limit))
    return [
        DueAlarm(int(r[0]), int(r[1]), int(r[2]), r[3], r[4], r[5], r[6],
                 None if r[7] is None else int(r[7]), bool(r[8]), r[9], bool(r[10]), r[11])
        for r in await cur.fetchall()
    ]  # fmt: skip


async def location_chain(
    conn: AsyncConnection[TupleRow], location_id: str | None
) -> tuple[list[str], str | None]:
    """The unit and its parents, nearest first, and the nearest storage profile among them."""
    if location_id is None:
        return [], None
    cur = await conn.execute(
        "WITH RECURSIVE up(location_id, parent_id, profile_id, depth) AS ("
        " SELECT location_id, parent_id, profile_id, 0 FROM locations WHERE location_id = %s"
        " UNION ALL SELECT l.location_id, l.parent_id, l.profile_id, up.depth + 1"
        " FROM locations l JOIN up ON l.location_id = up.parent_id WHERE up.depth < 50)"
        " SELECT location_id, profile_id FROM up ORDER BY depth",
        (location_id,),
    )
    rows = await cur.fetchall()
    profile = next((str(r[1]) for r in rows if r[1] is not None), None)
    return [str(r[0]) for r in rows], profile


async def suppressed_until(
    conn: AsyncConnection[TupleRow], locations: list[str], now: datetime
) -> datetime | None:
    """The end of the suppression window covering the unit (or a parent) at ``now`` (a window
    cancelled later still covered the instants before its cancellation)."""
    if not locations:
        return None
    cur = await conn.execute(
        "SELECT max(ends_at) FROM alarm_suppressions WHERE location_id = ANY(%s)"
        " AND (cancelled_at IS NULL OR cancelled_at > %s) AND starts_at <= %s AND ends_at > %s",
        (locations, now, now, now),
    )
    row = await cur.fetchone()
    return None if row is None else row[0]


async def site_timezone(conn: AsyncConnection[TupleRow], site_id: str) -> str:
    cur = await conn.execute("SELECT timezone FROM sites WHERE site_id = %s", (site_id,))
    row = await cur.fetchone()
    return "UTC" if row is None else str(row[0])


async def save_decision(
    conn: AsyncConnection[TupleRow],
    alert_id: int,
    d: Decision,
    *,
    site_id: str | None,
    policy: str | None,
    route: str | None,
    problems: list[str],
    now: datetime,
) -> None:
    await conn.execute(
        "UPDATE alarms SET site_id = %s, policy = %s, route = %s, step = %s, round = %s,"
        " next_at = %s, held = %s, finished_at = CASE WHEN %s::text IS NULL THEN NULL ELSE %s END,"
        " finish_reason = %s, problems = %s, updated_at = now() WHERE alert_id = %s",
        (site_id, policy, route, d.step, d.round, d.next_at, d.held, d.finish, now, d.finish,
         "; ".join(problems) or None, alert_id),
    )  # fmt: skip


async def defer(
    conn: AsyncConnection[TupleRow], alert_id: int, until: datetime, problem: str
) -> None:
    """Looks at an alarm again at ``until``, noting why it could not be decided now."""
    await conn.execute(
        "UPDATE alarms SET next_at = %s, problems = %s, updated_at = now() WHERE alert_id = %s",
        (until, problem, alert_id),
    )


def token_hash(token: str) -> bytes:
    """Links carry 192 random bits: a plain sha256 is enough and lets the lookup use an index."""
    return hashlib.sha256(token.encode("utf-8")).digest()


async def enqueue(
    conn: AsyncConnection[TupleRow],
    alert_id: int,
    recipients: list[tuple[str, str | None]],
    *,
    site_id: str,
    step: int,
    round_: int,
    now: datetime,
) -> int:
    """One outbox row per (channel, contact), each with its own acknowledgement link."""
    queued = 0
    for channel, contact in recipients:
        token = secrets.token_urlsafe(24)
        cur = await conn.execute(
            "INSERT INTO alarm_deliveries (alert_id, channel_id, contact, step, round, ack_token,"
            " ack_token_hash, next_attempt_at) SELECT %s, channel_id, %s, %s, %s, %s, %s, %s"
            " FROM alarm_channels WHERE site_id = %s AND name = %s"
            " ON CONFLICT (alert_id, channel_id, step, round) DO NOTHING",
            (alert_id, contact, step, round_, token, token_hash(token), now, site_id, channel),
        )
        queued += cur.rowcount
    return queued


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    alert_id: int
    channel_id: int
    url: str
    channel_enabled: bool
    site_id: str
    contact: str | None
    step: int
    round: int
    attempts: int
    ack_token: str | None


async def claim_deliveries(
    conn: AsyncConnection[TupleRow], now: datetime, lease_until: datetime, limit: int
) -> list[Claimed]:
    """Takes a lease on due deliveries (SKIP LOCKED: processes share them) and commits it."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE alarm_deliveries d SET claimed_until = %s, attempts = d.attempts + 1"
            " FROM alarm_channels c WHERE c.channel_id = d.channel_id AND d.delivery_id IN ("
            "  SELECT delivery_id FROM alarm_deliveries WHERE status = 'pending'"
            "  AND next_attempt_at <= %s AND (claimed_until IS NULL OR claimed_until <= %s)"
            "  ORDER BY next_attempt_at, delivery_id LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING d.delivery_id, d.alert_id, d.channel_id, c.url, c.disabled_at IS NULL,"
            " c.site_id, d.contact, d.step, d.round, d.attempts, d.ack_token",
            (lease_until, now, now, limit),
        )
        rows = await cur.fetchall()
    return [Claimed(int(r[0]), int(r[1]), int(r[2]), r[3], bool(r[4]), r[5], r[6], int(r[7]),
                    int(r[8]), int(r[9]), r[10]) for r in rows]  # fmt: skip


async def record_sent(conn: AsyncConnection[TupleRow], c: Claimed, now: datetime) -> None:
    await conn.execute(
        "UPDATE alarm_deliveries SET status = 'sent', sent_at = %s, last_error = NULL,"
        " claimed_until = NULL, ack_token = NULL WHERE delivery_id = %s",
        (now, c.delivery_id),
    )
    await _attempt(conn, c, now, "sent", None)
    await _touch(conn, c.alert_id)
    await conn.execute(
        "UPDATE alarm_channels SET consecutive_failures = 0, last_success_at = %s"
        " WHERE channel_id = %s",
        (now, c.channel_id),
    )


async def record_failure(
    conn: AsyncConnection[TupleRow],
    c: Claimed,
    now: datetime,
    error: str,
    *,
    give_up: bool,
    retry_at: datetime,
) -> int:
    """Logs a failed attempt, schedules the retry or gives up; returns the channel's
    consecutive failures."""
    await conn.execute(
        "UPDATE alarm_deliveries SET status = CASE WHEN %s THEN 'failed' ELSE 'pending' END,"
        " next_attempt_at = %s, claimed_until = NULL, last_error = %s,"
        " ack_token = CASE WHEN %s THEN NULL ELSE ack_token END WHERE delivery_id = %s",
        (give_up, retry_at, error, give_up, c.delivery_id),
    )
    await _attempt(conn, c, now, "given_up" if give_up else "failed", error)
    await _touch(conn, c.alert_id)
    cur = await conn.execute(
        "UPDATE alarm_channels SET consecutive_failures = consecutive_failures + 1,"
        " last_failure_at = %s, last_error = %s WHERE channel_id = %s"
        " RETURNING consecutive_failures",
        (now, error, c.channel_id),
    )
    row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def acknowledged(conn: AsyncConnection[TupleRow], alert_id: int) -> bool:
    """Whether the alert (or a later one of its excursion) has been acknowledged."""
    cur = await conn.execute(
        "SELECT al.acknowledged_at IS NOT NULL OR EXISTS (SELECT 1 FROM alerts x"
        " WHERE al.excursion_id IS NOT NULL AND x.excursion_id = al.excursion_id"
        " AND x.alert_id > al.alert_id AND x.acknowledged_at IS NOT NULL)"
        " FROM alerts al WHERE al.alert_id = %s",
        (alert_id,),
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def record_skipped(
    conn: AsyncConnection[TupleRow], c: Claimed, now: datetime, reason: str
) -> None:
    """Ends a delivery without sending it (not the channel's fault: its health is untouched)."""
    await conn.execute(
        "UPDATE alarm_deliveries SET status = 'failed', claimed_until = NULL, last_error = %s,"
        " ack_token = NULL WHERE delivery_id = %s",
        (reason, c.delivery_id),
    )
    await _attempt(conn, c, now, "given_up", reason)
    await _touch(conn, c.alert_id)


async def _touch(conn: AsyncConnection[TupleRow], alert_id: int) -> None:
    """Marks the alarm changed (the dashboard watches ``updated_at``)."""
    await conn.execute("UPDATE alarms SET updated_at = now() WHERE alert_id = %s", (alert_id,))


async def _attempt(
    conn: AsyncConnection[TupleRow], c: Claimed, now: datetime, outcome: str, error: str | None
) -> None:
    await conn.execute(
        "INSERT INTO alarm_delivery_attempts (delivery_id, attempt, at, outcome, error)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (c.delivery_id, c.attempts, now, outcome, error),
    )


async def escalate_now(conn: AsyncConnection[TupleRow], c: Claimed, now: datetime) -> bool:
    """Moves the alarm ``c`` belongs to on to its next step at once, unless someone on the same
    step was reached or the alarm has moved on already."""
    cur = await conn.execute(
        "UPDATE alarms SET next_at = %s, updated_at = now() WHERE alert_id = %s AND step = %s"
        " AND round = %s AND finished_at IS NULL AND held IS NULL AND NOT EXISTS ("
        "  SELECT 1 FROM alarm_deliveries d WHERE d.alert_id = %s AND d.step = %s"
        "  AND d.round = %s AND d.status = 'sent')",
        (now, c.alert_id, c.step, c.round, c.alert_id, c.step, c.round),
    )
    return cur.rowcount > 0


_FACTS_SQL = """
SELECT al.alert_id, al.kind, al.severity, al.message, al.at, al.location_id, al.sensor_id,
       s.name, s.timezone, l.name, e.started_at,
       p.alert_low, p.alert_high, p.action_low, p.action_high
FROM alerts al
LEFT JOIN locations l ON l.location_id = al.location_id
LEFT JOIN sites s ON s.site_id = %s
LEFT JOIN excursions e ON e.excursion_id = al.excursion_id
LEFT JOIN storage_profiles p ON p.profile_id = coalesce(e.profile_id, l.profile_id)
WHERE al.alert_id = %s
"""

_LOTS_SQL = """
SELECT p.name, lo.gtin, lo.lot_number, sum(b.quantity)::int, string_agg(DISTINCT b.status, '/')
FROM balances b JOIN lots lo USING (lot_id) JOIN products p ON p.gtin = lo.gtin
WHERE b.location_id = %s AND b.quantity > 0
GROUP BY p.name, lo.gtin, lo.lot_number ORDER BY lo.gtin, lo.lot_number
LIMIT 50
"""


async def facts(
    conn: AsyncConnection[TupleRow], alert_id: int, site_id: str
) -> dict[str, Any] | None:
    """What the message about ``alert_id`` says, except the links (see ``AlarmFacts``)."""
    cur = await conn.execute(_FACTS_SQL, (site_id, alert_id))
    r = await cur.fetchone()
    if r is None:
        return None
    limits = None if r[11:15] == (None, None, None, None) else Limits(*r[11:15])
    out: dict[str, Any] = {
        "alert_id": int(r[0]), "kind": r[1], "severity": r[2], "message": r[3], "at": r[4],
        "location_id": r[5], "sensor_id": r[6], "site_name": r[7] or site_id,
        "timezone": r[8] or "UTC", "location_name": r[9], "since": r[10], "limits": limits,
    }  # fmt: skip
    if r[6] is not None:
        cur = await conn.execute(
            "SELECT time, value FROM readings WHERE sensor_id = %s AND value IS NOT NULL"
            " AND quality <> 'bad' AND unit = 'degC' AND time <= received_at + interval '5 minutes'"
            " ORDER BY time DESC LIMIT 1",
            (r[6],),
        )
        latest = await cur.fetchone()
        if latest is not None:
            out["current_at"], out["current_value"] = latest[0], float(latest[1])
    if r[5] is not None:
        cur = await conn.execute(_LOTS_SQL, (r[5],))
        out["lots"] = tuple(LotLine(*row) for row in await cur.fetchall())
    return out


def build_facts(base: dict[str, Any], **links: Any) -> AlarmFacts:
    return AlarmFacts(**base, **links)
