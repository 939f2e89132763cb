"""Key figures over a period: excursions and time to acknowledge, time out of range, receiving
accuracy, recall response time. One query each, read-only.

Definitions (also in docs/dashboards.md):

- *time to acknowledge*: from an excursion alert being raised (``excursion_opened`` or
  ``excursion_escalated``) to its first acknowledgement;
- *time out of range*: the part of each high/low excursion (from its first breaching reading to
  its close, or now) that falls inside the period, summed over all units;
- *receiving accuracy*: the share of inbound dock-door passages that matched an ASN completely,
  and the units found short, over, unexpected or unconfirmed;
- *recall response time*: for each recall reference, from the recall's effective time (when the
  notice took effect) to the hold being written to the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow


@dataclass(frozen=True)
class Kpis:
    since: datetime
    excursions: int
    action_excursions: int
    acknowledged: int
    unacknowledged: int
    median_ack: timedelta | None
    max_ack: timedelta | None
    out_of_range: timedelta
    inbound_passages: int
    complete_passages: int
    discrepancies: int
    recalls: int
    median_recall_response: timedelta | None

    @property
    def receiving_accuracy(self) -> float | None:
        """Share of inbound passages that matched their ASN completely (None: no passages)."""
        if not self.inbound_passages:
            return None
        return self.complete_passages / self.inbound_passages


async def _one(conn: AsyncConnection[TupleRow], sql: str, params: Mapping[str, object]) -> TupleRow:
    cur = await conn.execute(sql, params)
    row = await cur.fetchone()
    assert row is not None  # aggregate queries always answer one row
    return row


async def kpis(conn: AsyncConnection[TupleRow], *, now: datetime, period: timedelta) -> Kpis:
    """The key figures over ``[now - period, now]``."""
    p = {"since": now - period, "now": now}
    exc = await _one(
        conn,
        "SELECT count(*), count(*) FILTER (WHERE level = 'action'),"
        " coalesce(sum(least(coalesce(ended_at, %(now)s), %(now)s)"
        "   - greatest(started_at, %(since)s)), interval '0')"
        " FROM excursions WHERE kind <> 'no_data' AND started_at <= %(now)s"
        " AND coalesce(ended_at, %(now)s) >= %(since)s",
        p,
    )
    ack = await _one(
        conn,
        "SELECT count(acknowledged_at), count(*) - count(acknowledged_at),"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY acknowledged_at - raised_at),"
        " max(acknowledged_at - raised_at)"
        " FROM alerts WHERE kind IN ('excursion_opened', 'excursion_escalated')"
        " AND raised_at BETWEEN %(since)s AND %(now)s",
        p,
    )
    rec = await _one(
        conn,
        "SELECT count(*) FILTER (WHERE outcome <> 'refused'),"
        " count(*) FILTER (WHERE outcome = 'complete'),"
        " coalesce(sum(jsonb_array_length(coalesce(summary->'over', '[]'::jsonb))"
        "   + jsonb_array_length(coalesce(summary->'unexpected', '[]'::jsonb))"
        "   + (SELECT coalesce(sum(jsonb_array_length(v)), 0) FROM"
        "      jsonb_each(coalesce(summary->'unconfirmed', '{}'::jsonb)) AS c(k, v))"
        "   + (SELECT coalesce(sum(jsonb_array_length(v)), 0) FROM"
        "      jsonb_each(coalesce(summary->'short', '{}'::jsonb)) AS s(k, v))), 0)::int"
        " FROM receipts WHERE direction = 'in' AND at BETWEEN %(since)s AND %(now)s",
        p,
    )
    recall = await _one(
        conn,
        "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY response) FROM ("
        " SELECT reference, min(recorded_at) - min(effective_at) AS response"
        " FROM ledger_entries WHERE movement = 'recall_hold'"
        " AND recorded_at BETWEEN %(since)s AND %(now)s GROUP BY reference) r",
        p,
    )
    return Kpis(
        since=now - period,
        excursions=int(exc[0]),
        action_excursions=int(exc[1]),
        out_of_range=exc[2],
        acknowledged=int(ack[0]),
        unacknowledged=int(ack[1]),
        median_ack=ack[2],
        max_ack=ack[3],
        inbound_passages=int(rec[0]),
        complete_passages=int(rec[1]),
        discrepancies=int(rec[2]),
        recalls=int(recall[0]),
        median_recall_response=recall[1],
    )
