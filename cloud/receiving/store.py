"""ASNs and receiving records in the database (inside the caller's transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from cloud.receiving import AsnConflictError, AsnRejectedError
from cloud.receiving.asn import AsnIn, expected_items
from cloud.receiving.matching import OpenAsn


async def create_asn(conn: AsyncConnection[TupleRow], asn: AsnIn) -> int:
    """Stores an ASN and its items; refuses unknown sites and products, and duplicates."""
    cur = await conn.execute("SELECT 1 FROM sites WHERE site_id = %s", (asn.site_id,))
    if await cur.fetchone() is None:
        raise AsnRejectedError(f"unknown site {asn.site_id!r}")
    items = expected_items(asn)
    gtins = sorted({i.gtin for i in items if i.gtin})
    cur = await conn.execute("SELECT gtin FROM products WHERE gtin = ANY(%s)", (gtins,))
    missing = set(gtins) - {str(r[0]) for r in await cur.fetchall()}
    if missing:
        raise AsnRejectedError(f"products not registered: {', '.join(sorted(missing))}")
    keys = [i.key for i in items]
    cur = await conn.execute(
        "SELECT a.reference, i.epc_uri FROM asn_items i JOIN asns a USING (asn_id)"
        " WHERE a.status = 'open' AND a.site_id = %s AND i.epc_uri = ANY(%s) LIMIT 3",
        (asn.site_id, keys),
    )
    clash = await cur.fetchall()
    if clash:
        listed = ", ".join(f"{key} (ASN {ref})" for ref, key in clash)
        raise AsnConflictError(f"already announced by an open ASN: {listed}")
    cur = await conn.execute(
        "INSERT INTO asns (site_id, reference, supplier, expected_at, document)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (site_id, reference) DO NOTHING"
        " RETURNING asn_id",
        (
            asn.site_id,
            asn.reference,
            asn.supplier,
            asn.expected_at,
            Jsonb(asn.model_dump(mode="json")),
        ),
    )
    row = await cur.fetchone()
    if row is None:
        raise AsnConflictError(f"ASN {asn.reference!r} already exists at site {asn.site_id!r}")
    asn_id = int(row[0])
    async with conn.cursor() as c:
        await c.executemany(
            "INSERT INTO asn_items (asn_id, epc_uri, unit_kind, parent_uri, gtin, lot_number,"
            " expiry, quantity) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(asn_id, i.key, i.kind, i.parent, i.gtin, i.lot, i.expiry, i.quantity) for i in items],
        )
    return asn_id


async def open_asns(
    conn: AsyncConnection[TupleRow], site_id: str, keys: Sequence[str]
) -> list[OpenAsn]:
    """The open ASNs of a site that announce one of ``keys`` or one of their GTINs, with what
    each has received so far; locked for this receipt. Other ASNs cannot change the match."""
    gtins = sorted({k[4:18] for k in keys if k.startswith("(01)")})
    cur = await conn.execute(
        "SELECT a.asn_id, a.document FROM asns a WHERE a.site_id = %s AND a.status = 'open'"
        " AND EXISTS (SELECT 1 FROM asn_items i WHERE i.asn_id = a.asn_id"
        "  AND (i.epc_uri = ANY(%s) OR i.gtin = ANY(%s)))"
        " ORDER BY a.asn_id FOR UPDATE",
        (site_id, list(keys), gtins),
    )
    rows = await cur.fetchall()
    found: list[OpenAsn] = []
    for asn_id, document in rows:
        asn = AsnIn.model_validate(document)
        got = await conn.execute(
            "SELECT epc_uri FROM asn_items WHERE asn_id = %s AND received_at IS NOT NULL",
            (asn_id,),
        )
        received = frozenset(str(r[0]) for r in await got.fetchall())
        found.append(OpenAsn(int(asn_id), tuple(expected_items(asn)), received))
    return found


async def on_hand_keys(
    conn: AsyncConnection[TupleRow], site_id: str, keys: Sequence[str]
) -> frozenset[str]:
    """Which of ``keys`` (units and containers) the ledger has on hand at one of the site's
    locations: read at an inbound door they are already received, whichever ASN received them.
    A unit that left (issued, or on hand at another site) is not, so its return still shows."""
    cur = await conn.execute(
        "SELECT u.gs1_key FROM units u JOIN locations l USING (location_id)"
        " WHERE u.gs1_key = ANY(%s) AND l.site_id = %s",
        (list(keys), site_id),
    )
    return frozenset(str(r[0]) for r in await cur.fetchall())


@dataclass(frozen=True)
class AsnSummary:
    asn_id: int
    site_id: str
    reference: str
    supplier: str | None
    expected_at: datetime | None
    status: str
    items: int
    received: int


_SUMMARY = (
    "SELECT a.asn_id, a.site_id, a.reference, a.supplier, a.expected_at, a.status,"
    " count(i.*), count(i.received_at) FROM asns a LEFT JOIN asn_items i USING (asn_id)"
)


def _summary(row: TupleRow) -> AsnSummary:
    return AsnSummary(
        int(row[0]), str(row[1]), str(row[2]), row[3], row[4], str(row[5]), int(row[6]),
        int(row[7]),
    )  # fmt: skip


async def get_asn(conn: AsyncConnection[TupleRow], asn_id: int) -> AsnSummary | None:
    cur = await conn.execute(_SUMMARY + " WHERE a.asn_id = %s GROUP BY a.asn_id", (asn_id,))
    row = await cur.fetchone()
    return _summary(row) if row else None


async def list_asns(
    conn: AsyncConnection[TupleRow], site_id: str | None, status: str | None, limit: int
) -> list[AsnSummary]:
    cur = await conn.execute(
        _SUMMARY + " WHERE (%(site)s::text IS NULL OR a.site_id = %(site)s)"
        " AND (%(status)s::text IS NULL OR a.status = %(status)s)"
        " GROUP BY a.asn_id ORDER BY a.asn_id DESC LIMIT %(limit)s",
        {"site": site_id, "status": status, "limit": limit},
    )
    return [_summary(r) for r in await cur.fetchall()]


async def close_asn(conn: AsyncConnection[TupleRow], asn_id: int) -> bool:
    cur = await conn.execute(
        "UPDATE asns SET status = 'closed' WHERE asn_id = %s AND status <> 'closed'"
        " RETURNING asn_id",
        (asn_id,),
    )
    return await cur.fetchone() is not None


async def receipts(
    conn: AsyncConnection[TupleRow], *, asn_id: int | None, limit: int
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT receipt_id, passage_id, door_id, location_id, direction, at, asn_ids, received,"
        " outcome, summary FROM receipts"
        " WHERE (%(asn)s::bigint IS NULL OR %(asn)s = ANY(asn_ids))"
        " ORDER BY receipt_id DESC LIMIT %(limit)s",
        {"asn": asn_id, "limit": limit},
    )
    names = [
        "receipt_id", "passage_id", "door_id", "location_id", "direction", "at", "asn_ids",
        "received", "outcome", "summary",
    ]  # fmt: skip
    rows = [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]
    for row in rows:  # receipts written before the flag existed had nothing unconfirmed
        row["needs_verification"] = bool(row["summary"].get("needs_verification", False))
    return rows
