"""The dashboard's gateway panel: each gateway's processing, a stalled stream first, with its error.

A stalled stream means readings of that gateway's sensors are stored but not judged; the panel
says so next to the error, the failing batch and how to set it aside. Streams that are merely
behind show how many batches wait and since when. Each gateway's last batch and the outbox depth
that batch reported (records waiting at the gateway, and how long the oldest had waited) come
from ``gateway_streams``, its clock against the cloud's from its last batch or heartbeat
(``gateways.clock_sent_at``), as in ``GET /v1/gateways``.
Everything from the database goes through ``pages.e``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.processing.streams import StreamState, stream_states
from cloud.web.pages import duration, e, when

SKEW_SHOWN = timedelta(minutes=1)
"""A gateway clock further off than this is flagged; less is within network and batching delay."""
BACKLOG_SHOWN = timedelta(minutes=10)
"""An outbox whose oldest record waited longer than this is flagged: the gateway is catching up."""


@dataclass(frozen=True)
class GatewayRow:
    gateway_id: str
    site_id: str | None
    """The site's name (its id where it has none)."""
    disabled: bool
    streams: tuple[StreamState, ...]
    last_batch_at: datetime | None = None
    """The cloud's receipt of the gateway's last stored batch (as GET /v1/gateways)."""
    clock_skew: timedelta | None = None
    """The ``sent_at`` of its last batch or heartbeat minus the cloud's receipt: positive when the
    gateway's clock is ahead."""
    outbox_pending: int | None = None
    """Records waiting in the gateway's outbox as it sent that batch; None: not reported."""
    outbox_oldest_age: timedelta | None = None
    name: str | None = None
    """The name people see; the id shows where none is given."""

    @property
    def state(self) -> str:
        if any(s.stalled_since is not None for s in self.streams):
            return "stalled"
        if any(s.failures for s in self.streams):
            return "failing"
        return "behind" if self.streams else "ok"


async def gateway_rows(conn: AsyncConnection[TupleRow]) -> list[GatewayRow]:
    """Every gateway with its streams that are behind, failing or stalled; stalled first."""
    states = await stream_states(conn)
    cur = await conn.execute(
        "SELECT g.gateway_id, coalesce(st.name, g.site_id), g.disabled_at IS NOT NULL,"
        "       b.last_received_at, g.clock_sent_at - g.clock_received_at, b.outbox_pending,"
        "       b.outbox_oldest_age, g.name"
        " FROM gateways g LEFT JOIN sites st USING (site_id) LEFT JOIN LATERAL ("
        "     SELECT gs.last_received_at, gs.last_sent_at, gs.outbox_pending,"
        "            gs.outbox_oldest_age FROM gateway_streams gs"
        "     WHERE gs.gateway_id = g.gateway_id AND gs.last_received_at IS NOT NULL"
        "     ORDER BY gs.last_received_at DESC LIMIT 1) b ON true"
        " ORDER BY g.gateway_id"
    )
    rows = [
        GatewayRow(
            str(g), s, bool(d), tuple(x for x in states if x.gateway_id == g), at, skew,
            pending, age, name,
        )
        for g, s, d, at, skew, pending, age, name in await cur.fetchall()
    ]  # fmt: skip
    order = {"stalled": 0, "failing": 1, "behind": 2, "ok": 3}
    return sorted(rows, key=lambda r: (order[r.state], r.gateway_id))


def gateways_section(rows: Sequence[GatewayRow]) -> str:
    if not rows:
        return "<p class='empty'>No gateway registered.</p>"
    body = "".join(_row(r) for r in rows)
    return (
        "<table class='gateways'><thead><tr><th>Gateway</th><th>Site</th><th>Last batch</th>"
        "<th>Clock</th><th>Outbox</th><th>Processing</th>"
        f"<th>Detail</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _row(r: GatewayRow) -> str:
    label = {
        "stalled": "<b>PROCESSING STALLED</b>",
        "failing": "<b>retrying</b>",
        "behind": "catching up",
        "ok": "up to date",
    }[r.state]
    details = "".join(_stream(s) for s in r.streams) or "—"
    off = " (disabled)" if r.disabled else ""
    return (
        f'<tr class="{e(r.state)}" data-gateway="{e(r.gateway_id)}" data-state="{e(r.state)}">'
        f"<td>{_name(r)}{e(off)}</td><td>{e(r.site_id or '—')}</td>"
        f"<td class='last-batch'>{when(r.last_batch_at)}</td>{_clock(r.clock_skew)}"
        f"{_outbox(r)}<td>{label}</td>"
        f"<td>{details}</td></tr>"
    )


def _name(r: GatewayRow) -> str:
    """The gateway's name (its id in the tooltip, for whoever must type it in a command)."""
    if r.name is None:
        return e(r.gateway_id)
    return f"<span title='{e(r.gateway_id)}'>{e(r.name)}</span>"


def _clock(skew: timedelta | None) -> str:
    """The gateway's clock against the cloud's at its last batch (network time included)."""
    if skew is None:
        return "<td class='clock'>—</td>"
    if abs(skew) < SKEW_SHOWN:
        return "<td class='clock'>in step</td>"
    side = "ahead" if skew > timedelta(0) else "behind"
    return f"<td class='clock skewed'><b>{e(duration(abs(skew)))} {side}</b></td>"


def _outbox(r: GatewayRow) -> str:
    """Records waiting at the gateway when it sent its last batch, and the oldest one's wait."""
    if r.outbox_pending is None:
        title = "this gateway does not report it" if r.last_batch_at else "no batch yet"
        return f"<td class='outbox' title='{e(title)}'>—</td>"
    count = f"{r.outbox_pending:,}".replace(",", " ")
    text = f"{count} waiting"
    if r.outbox_oldest_age is not None and r.outbox_pending:
        text += f", oldest {duration(r.outbox_oldest_age)}"
    if r.outbox_oldest_age is not None and r.outbox_oldest_age > BACKLOG_SHOWN:
        return f"<td class='outbox backlog' data-pending='{r.outbox_pending}'><b>{e(text)}</b></td>"
    return f"<td class='outbox' data-pending='{r.outbox_pending}'>{e(text)}</td>"


def _stream(s: StreamState) -> str:
    waiting = f"{s.pending_batches} batches waiting since {when(s.oldest_pending_at)}"
    if s.failures == 0:
        return f"<div>{waiting}</div>"
    since: datetime | None = s.stalled_since or s.failing_since
    head = (
        f"batch {e(s.failing_batch_id)} failed {e(s.failures)}× since {when(since)}"
        f" — its sensors' readings are stored but not judged"
    )
    fix = (
        f"<div class='hint'>Fix the cause, or set the batch aside: <code>coldtrace cloud stream"
        f" skip {e(s.gateway_id)} --batch {e(s.failing_batch_id)} --reason …</code></div>"
        if s.stalled_since is not None
        else ""
    )
    return f"<div>{head}; {waiting}</div><pre class='error'>{e(s.last_error)}</pre>{fix}"
