"""The processor step for ``PortalPassage`` records: receive inbound loads, issue outbound ones.

A passage at a door whose location is unknown, or whose effects the ledger refuses, still leaves
a receiving record (outcome ``refused``, with the reason) and the processor goes on: bad input
must not hold up a gateway's stream. An inbound receipt with *unconfirmed* units (tagged units
received per a read container's label whose own tag was not read) has ``needs_verification``
set in its summary: they are in the ledger, listed so that a person counts the container.
Each passage is handled once: its receiving record is keyed
by (gateway, boot, seq), and the processor replays a batch only if it did not commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from cloud.ledger import LedgerError
from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import NewUnit, ensure_lot, post, register_units
from cloud.processing.steps import ProcessingBatch
from cloud.receiving.matching import Reads, ToReceive, decode_reads, match_inbound
from cloud.receiving.outbound import issue_departure
from cloud.receiving.store import on_hand_keys, open_asns
from cloud.transfers.arrival import after_receipt, before_receipt, from_transit, transfers_of
from cloud.transfers.door import load_passage
from protocols.records import Direction, PortalPassage, clock_ahead


@dataclass
class Outcome:
    """What a passage did, as stored on its receiving record."""

    site_id: str | None = None
    location_id: str | None = None
    asn_ids: list[int] = field(default_factory=list)
    received: int = 0
    outcome: str = "nothing"
    summary: dict[str, Any] = field(default_factory=dict)


class ReceivingStep:
    """Matches inbound passages to open ASNs and issues what leaves through outbound ones."""

    name = "receiving"

    async def apply(self, conn: AsyncConnection[TupleRow], batch: ProcessingBatch) -> None:
        for item in batch.records:
            if isinstance(item.record, PortalPassage):
                await handle_passage(
                    conn, batch.gateway_id, batch.boot_id, item.seq, item.record,
                    received_at=batch.received_at,
                )  # fmt: skip


async def handle_passage(
    conn: AsyncConnection[TupleRow],
    gateway_id: str,
    boot_id: UUID,
    seq: int,
    p: PortalPassage,
    *,
    received_at: datetime | None = None,
) -> Outcome:
    """Receives or issues what passage ``p`` carried, once; ``received_at`` is the cloud's
    receipt of its batch: a passage stamped later than that (``clock_ahead``) is not applied."""
    cur = await conn.execute(
        "SELECT 1 FROM receipts WHERE gateway_id = %s AND boot_id = %s AND seq = %s",
        (gateway_id, boot_id, seq),
    )
    if await cur.fetchone() is not None:
        return Outcome(outcome="nothing", summary={"replay": True})
    reads = decode_reads(p.epcs)
    out = Outcome()
    out.summary = {"undecodable": list(reads.undecodable), "other": list(reads.not_trade_items)}
    door = await _door(conn, p.door_id)
    site = await _gateway_site(conn, gateway_id)
    if door is None:
        out.outcome = "refused"
        out.summary["error"] = f"door {p.door_id!r} is not a known dock-door location or device"
    elif site is not None and door[1] != site:
        # Ingest refuses another site's doors (cloud.ingest.scope); this holds when the door or
        # the gateway moved to another site between the passage's storage and its processing.
        out.outcome = "refused"
        out.summary["error"] = (
            f"door {p.door_id!r} is at site {door[1]!r}; gateway {gateway_id!r} writes for"
            f" site {site!r}"
        )
    elif received_at is not None and clock_ahead(p.started_at, received_at):
        # A gateway clock ahead would post ledger entries effective in the future.
        out.outcome = "refused"
        out.summary["error"] = (
            f"passage stamped {p.started_at.isoformat()}, ahead of the cloud's receipt"
            f" {received_at.isoformat()}: not received; check the gateway's clock"
        )
    else:
        out.location_id, out.site_id = door
        try:
            async with conn.transaction():  # a savepoint: a refusal undoes only this passage
                if p.direction is Direction.INBOUND:
                    await _inbound(conn, p, reads, out)
                elif p.direction is Direction.OUTBOUND:
                    await _outbound(conn, p, reads, out)
                else:
                    out.summary["error"] = "direction unknown: nothing received or issued"
        except LedgerError as err:
            out.outcome = "refused"
            out.received = 0
            out.summary["error"] = f"ledger refused: {err}"
    await _record(conn, gateway_id, boot_id=boot_id, seq=seq, p=p, out=out)
    return out


async def _gateway_site(conn: AsyncConnection[TupleRow], gateway_id: str) -> str | None:
    cur = await conn.execute("SELECT site_id FROM gateways WHERE gateway_id = %s", (gateway_id,))
    row = await cur.fetchone()
    return None if row is None or row[0] is None else str(row[0])


async def _door(conn: AsyncConnection[TupleRow], door_id: str) -> tuple[str, str] | None:
    # the door is a dock-door location, or a device (reader, antenna) mounted at one
    cur = await conn.execute(
        "SELECT l.location_id, l.site_id FROM locations l WHERE l.location_id = %s"
        " UNION ALL SELECT l.location_id, l.site_id FROM devices d"
        " JOIN locations l USING (location_id) WHERE d.device_id = %s LIMIT 1",
        (door_id, door_id),
    )
    row = await cur.fetchone()
    return (str(row[0]), str(row[1])) if row else None


async def _inbound(
    conn: AsyncConnection[TupleRow], p: PortalPassage, reads: Reads, out: Outcome
) -> None:
    assert out.site_id is not None
    assert out.location_id is not None
    asns = await open_asns(conn, out.site_id, list(reads.keys))
    match = match_inbound(reads, asns, await on_hand_keys(conn, out.site_id, list(reads.keys)))
    refs = {a.asn_id: a for a in asns}
    cur = await conn.execute(
        "SELECT asn_id, reference FROM asns WHERE asn_id = ANY(%s)", (list(refs),)
    )
    reference = {int(a): str(r) for a, r in await cur.fetchall()}
    unseen = {k for keys in match.unconfirmed.values() for k in keys}
    # a transfer's ASN: judge the transit first (an action excursion quarantines in transit),
    # then its units move out of transit instead of being received from outside
    transfers = await transfers_of(conn, sorted({t.asn_id for t in match.receive}))
    quarantined = await before_receipt(conn, transfers, p.ended_at)
    drafts = await _receipt_drafts(
        conn, match.receive, p, out.location_id, reference, unseen=unseen
    )
    drafts = await from_transit(conn, drafts, {t.reference: t for t in transfers.values()})
    await post(conn, drafts)
    await _remember_contents(conn, match.receive, drafts, p)
    await conn.execute(
        "UPDATE units SET location_id = %s, status = 'available', updated_at = now()"
        " WHERE gs1_key = ANY(%s) AND unit_kind = 'sscc'",
        (out.location_id, [t.item.key for t in match.receive if t.item.kind == "sscc"]),
    )
    for asn_id in sorted({t.asn_id for t in match.receive}):
        await conn.execute(
            "UPDATE asn_items SET received_at = %s WHERE asn_id = %s AND epc_uri = ANY(%s)",
            (p.ended_at, asn_id, [t.item.key for t in match.receive if t.asn_id == asn_id]),
        )
    if match.completed:
        await conn.execute(
            "UPDATE asns SET status = 'received' WHERE asn_id = ANY(%s)", (list(match.completed),)
        )
        await after_receipt(conn, list(match.completed), p.ended_at)
    out.asn_ids = sorted({t.asn_id for t in match.receive} | set(match.short))
    out.received = sum(t.item.quantity for t in match.receive if t.item.kind != "sscc")
    out.outcome = "complete" if match.completed and not match.short else "partial"
    if not match.receive:
        out.outcome = "nothing"
    out.summary |= {
        "received": [t.item.key for t in match.receive],
        "already_received": list(match.already_received),
        "over": list(match.over),
        "unexpected": list(match.unexpected),
        "short": {str(k): list(v) for k, v in match.short.items()},
        "completed_asns": list(match.completed),
        "unconfirmed": {k: list(v) for k, v in match.unconfirmed.items()},
        "needs_verification": bool(match.unconfirmed),
    }
    if transfers:
        out.summary["transfers"] = sorted(t.reference for t in transfers.values())
        out.summary["quarantined_in_transit"] = {k: v for k, v in quarantined.items() if v}


async def _receipt_drafts(
    conn: AsyncConnection[TupleRow],
    receive: tuple[ToReceive, ...],
    p: PortalPassage,
    dock: str,
    reference: dict[int, str],
    *,
    unseen: set[str],
) -> list[Draft]:
    lots: dict[tuple[str, str], int] = {}
    units: list[NewUnit] = []
    # a unit known before (e.g. returned) keeps the URI it was first stored under
    cur = await conn.execute(
        "SELECT gs1_key, epc_uri FROM units WHERE gs1_key = ANY(%s)",
        ([t.item.key for t in receive],),
    )
    stored = {str(k): str(u) for k, u in await cur.fetchall()}
    receive = tuple(
        ToReceive(t.asn_id, t.item, stored.get(t.item.key, t.epc_uri)) if t.epc_uri else t
        for t in receive
    )
    for t in receive:
        item = t.item
        if item.gtin and item.lot and (item.gtin, item.lot) not in lots:
            lots[item.gtin, item.lot] = await ensure_lot(
                conn, gtin=item.gtin, lot_number=item.lot, expiry=item.expiry
            )
        if t.epc_uri is not None:
            lot_id = lots[item.gtin, item.lot] if item.gtin and item.lot else None
            kind: Literal["sgtin", "sscc"] = "sscc" if item.kind == "sscc" else "sgtin"
            units.append(NewUnit(t.epc_uri, kind, lot_id, None, item.key))
    await register_units(conn, units)
    uri_of_key = {t.item.key: t.epc_uri for t in receive if t.epc_uri}
    await _set_parents(conn, receive, uri_of_key)
    drafts: list[Draft] = []
    for t in receive:
        if t.item.kind == "sscc" or not t.item.gtin or not t.item.lot:
            continue
        drafts.append(
            Draft(
                Movement.RECEIVE,
                lots[t.item.gtin, t.item.lot],
                t.item.quantity,
                p.ended_at,
                f"portal:{p.door_id}",
                to=Place(dock, Status.AVAILABLE),
                epc_uri=t.epc_uri if t.item.kind == "sgtin" else None,
                reason=(
                    "received against ASN per its container's label; own tag not read"
                    if t.item.key in unseen
                    else "received against ASN"
                ),
                reference=f"asn:{reference[t.asn_id]}",
            )
        )
    return drafts


async def _remember_contents(
    conn: AsyncConnection[TupleRow],
    receive: tuple[ToReceive, ...],
    drafts: list[Draft],
    p: PortalPassage,
) -> None:
    # bulk drafts follow the bulk items in order (see _receipt_drafts)
    bulk = [t for t in receive if t.item.kind == "bulk" and t.item.gtin and t.item.lot]
    lot_drafts = [d for d in drafts if d.epc_uri is None]
    rows = [
        (t.item.parent, d.lot_id, t.item.quantity, p.ended_at)
        for t, d in zip(bulk, lot_drafts, strict=True)
        if t.item.parent is not None
    ]
    if rows:
        async with conn.cursor() as c:
            await c.executemany(
                "INSERT INTO container_contents (container_key, lot_id, quantity, received_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (container_key, lot_id)"
                " DO UPDATE SET quantity = container_contents.quantity + EXCLUDED.quantity",
                rows,
            )


async def _set_parents(
    conn: AsyncConnection[TupleRow], receive: tuple[ToReceive, ...], uri_of_key: dict[str, str]
) -> None:
    rows = [
        (uri_of_key.get(t.item.parent), t.epc_uri)
        for t in receive
        if t.epc_uri and t.item.parent and t.item.parent in uri_of_key
    ]
    if rows:
        await conn.execute(
            "UPDATE units u SET parent_uri = v.parent FROM unnest(%s::text[], %s::text[])"
            " AS v(parent, epc) WHERE u.epc_uri = v.epc",
            ([r[0] for r in rows], [r[1] for r in rows]),
        )


async def _outbound(
    conn: AsyncConnection[TupleRow], p: PortalPassage, reads: Reads, out: Outcome
) -> None:
    assert out.site_id is not None
    loading = await load_passage(conn, p, reads, out.site_id)
    if loading is not None:  # the site is loading transfers: verify against the order
        out.received = sum(d.quantity for d in loading.shipped)
        out.outcome = (
            "complete" if loading.shipped and not loading.blocked
            else "partial" if loading.shipped else "nothing"
        )  # fmt: skip
        out.summary |= {
            "transfer": loading.reference,
            "shipped": [d.epc_uri or f"{d.quantity} of lot {d.lot_id}" for d in loading.shipped],
            "blocked": [f"{item} ({why})" for item, why in loading.blocked],
            "already_shipped": loading.already,
        }
        return
    gone = await issue_departure(conn, p, reads)
    out.received = sum(d.quantity for d in gone.issued)
    out.outcome = (
        "complete" if gone.issued and not gone.blocked else "partial" if gone.issued else "nothing"
    )
    out.summary |= {
        "issued": [d.epc_uri or f"{d.quantity} of lot {d.lot_id}" for d in gone.issued],
        "blocked": gone.blocked,
        "unknown": gone.unknown,
    }


async def _record(
    conn: AsyncConnection[TupleRow],
    gateway_id: str,
    *,
    boot_id: UUID,
    seq: int,
    p: PortalPassage,
    out: Outcome,
) -> None:
    at: datetime = p.ended_at
    await conn.execute(
        "INSERT INTO receipts (gateway_id, boot_id, seq, passage_id, door_id, site_id,"
        " location_id, direction, at, asn_ids, received, outcome, summary)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            gateway_id, boot_id, seq, p.passage_id, p.door_id, out.site_id, out.location_id,
            p.direction.value, at, out.asn_ids, out.received, out.outcome, Jsonb(out.summary),
        ),
    )  # fmt: skip
