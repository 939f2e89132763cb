"""A lot's cold-chain certificate: where it was (stays), MKT, time out of range, stability
budget left, the excursions it went through, its disposition and the e-signatures on it.

The figures are ``cloud.coldchain.exposure.lot_exposure``'s, the function behind
``GET /v1/lots/{id}/exposure``, at the same hourly bucket, as of the moment it is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.coldchain import TraceTooLongError
from cloud.coldchain.exposure import LotExposure, lot_exposure
from cloud.reports import ReportInputError
from cloud.reports.archive import Format, Rendered
from cloud.reports.document import duration, esc, facts, page_html, table, temp, when
from cloud.reports.excursion_data import Decision, decisions
from cloud.reports.output import output
from cloud.signatures.core import Signature
from cloud.signatures.store import signatures_for

BUCKET = timedelta(hours=1)


@dataclass(frozen=True)
class LotCertificate:
    exposure: LotExposure
    product: str
    expiry: str | None
    as_of: datetime
    timezone: str
    decisions: list[Decision]
    signatures: list[Signature]


async def lot_certificate(
    conn: AsyncConnection[TupleRow], lot_id: int, *, now: datetime
) -> LotCertificate:
    try:
        found = await lot_exposure(conn, lot_id, now=now, bucket=BUCKET)
    except TraceTooLongError as err:
        raise ReportInputError(str(err)) from err
    if found is None:
        raise ReportInputError(f"no lot {lot_id}")
    cur = await conn.execute(
        "SELECT p.name, l.expiry::text, coalesce((SELECT si.timezone FROM ledger_entries e"
        "  JOIN locations lo ON lo.location_id = coalesce(e.to_location, e.from_location)"
        "  JOIN sites si USING (site_id) WHERE e.lot_id = l.lot_id ORDER BY e.entry_id LIMIT 1),"
        " 'UTC') FROM lots l JOIN products p USING (gtin) WHERE l.lot_id = %s",
        (lot_id,),
    )
    row = await cur.fetchone()
    assert row is not None  # lot_exposure found it
    since = min((s.start for s in found.stays), default=now)
    return LotCertificate(
        found, row[0], row[1], now, row[2], await decisions(conn, [lot_id], since),
        await signatures_for(conn, [f"lot:{lot_id}"]),
    )  # fmt: skip


def _summary(c: LotCertificate) -> str:
    lot, e, use = c.exposure.lot, c.exposure.exposure, c.exposure.exposure.budget
    limit = lot.profile.mkt_limit
    return facts([
        ("Product", esc(f"{c.product} (GTIN {lot.gtin})")),
        ("Lot", esc(f"{lot.lot_number} (id {lot.lot_id}), expiry {c.expiry or 'not given'}")),
        ("Status", esc(lot.status)),
        ("Storage profile", esc(lot.profile.profile_id)),
        ("As of", esc(when(c.as_of, c.timezone))),
        ("MKT, whole life", esc(f"{temp(e.mkt)} °C")),
        (f"Worst {duration(lot.profile.mkt_window)} MKT (USP <1079.2>)",
         esc(f"{temp(e.worst_window_mkt)} °C")
         + (f" (limit {temp(limit)} °C)" if limit is not None else "")),
        ("Time out of range", esc(duration(use.out_of_range))),
        ("Time without data", esc(duration(use.unknown))),
        ("Time frozen", esc(duration(use.frozen))),
        ("Stability budget", esc(duration(use.budget))),
        ("Budget left", esc(duration(use.remaining)) + (' <span class="bad">exhausted</span>'
                                                   if use.exhausted else "")),
    ])  # fmt: skip


def lot_html(c: LotCertificate, *, generated: datetime) -> str:
    z, x = c.timezone, c.exposure
    body = [
        _summary(c), "<h2>Stays</h2>",
        table(["location", "from", "to"],
              ([esc(s.location_id), esc(when(s.start, z)), esc(when(s.end, z))]
               for s in x.stays)),
        "<h2>Excursions</h2>",
        table(["#", "location", "kind", "level", "start", "end", "peak °C"],
              ([esc(e.excursion_id), esc(e.location_id), esc(e.kind), esc(e.level),
                esc(when(e.started_at, z)), esc(when(e.ended_at, z)), temp(e.peak_value)]
               for e in x.excursions), numeric=frozenset({0, 6})),
        "<h2>Disposition</h2>",
        table(["at", "decision", "quantity", "by", "reason"],
              ([esc(when(d.at, z)), esc(d.movement), esc(d.quantity), esc(d.actor),
                esc(d.reason or "")] for d in c.decisions)),
        "<h2>Electronic signatures</h2>",
        table(["signature"], ([esc(s.manifestation())] for s in c.signatures)),
    ]  # fmt: skip
    return page_html(
        "Cold-chain certificate", "".join(body),
        subtitle=f"{c.product}, lot {x.lot.lot_number}", generated=when(generated, "UTC"),
    )  # fmt: skip


def render_lot(c: LotCertificate, fmt: Format, *, generated: datetime) -> Rendered:
    """CSV: one row of figures (names in the header), durations in seconds."""
    lot, e, use = c.exposure.lot, c.exposure.exposure, c.exposure.exposure.budget

    def rows() -> tuple[list[str], list[list[object]]]:
        header = ["lot_id", "gtin", "lot_number", "status", "as_of", "mkt_degC",
                  "worst_window_mkt_degC", "mkt_window_s", "time_out_of_range_s",
                  "time_unknown_s", "time_frozen_s", "stability_budget_s", "budget_left_s",
                  "excursions", "stays", "last_decision", "signatures"]  # fmt: skip
        last = c.decisions[-1].movement if c.decisions else None
        return header, [[lot.lot_id, lot.gtin, lot.lot_number, lot.status, c.as_of, e.mkt,
                         e.worst_window_mkt, lot.profile.mkt_window, use.out_of_range,
                         use.unknown, use.frozen, use.budget, use.remaining,
                         len(c.exposure.excursions), len(c.exposure.stays), last,
                         len(c.signatures)]]  # fmt: skip

    return output(
        "lot", fmt, title=f"Cold-chain certificate lot {lot.lot_number}",
        stem=f"lot-{lot.lot_id}-{lot.lot_number}",
        parameters={"lot_id": lot.lot_id, "as_of": c.as_of.isoformat()},
        html=lambda: lot_html(c, generated=generated), table=rows,
    )  # fmt: skip
