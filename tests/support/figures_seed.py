"""A site's history whose inventory figures are worked out by hand in the tests that use it
(tests/cloud/test_figures_page.py, tests/test_grafana_inventory.py), on ledger_seed's master data.

Product A over the seven UTC days ending today: 100 received ten days ago, ``USE`` issued (10 a
day on average), 5 moved today to a customer shipment (in transit, not consumed), so 25 usable
on hand. A cycle count booked 100/100 and counted 95/105 (0 % accurate per item). Two ASNs
expected two days ago: one received a day before that, one a day after (50 % on time).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import ensure_lot, post
from cloud.transfers.store import LineIn, TransferIn, create_transfer
from tests.support.ledger_seed import FRIDGE, GTIN_A, GTIN_B, SITE

USE = [10, 12, 8, 10, 10, 12, 8]  # consumption of the seven UTC days ending today


async def seed_history(url: str) -> None:
    """Product A: 100 received ten days ago, ``USE`` issued, 5 moved to a customer shipment
    today (in transit, not consumed). A count booked 100/100 and counted 95/105. Two ASNs
    expected two days ago, one received a day before that, one a day after."""
    today = datetime.combine(datetime.now(UTC).date(), time(), tzinfo=UTC)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        a = await ensure_lot(conn, gtin=GTIN_A, lot_number="A1", expiry=None)
        b = await ensure_lot(conn, gtin=GTIN_B, lot_number="B1", expiry=None)
        fridge = Place(FRIDGE, Status.AVAILABLE)
        await create_transfer(
            conn,
            TransferIn(
                reference="T-1", from_site=SITE, customer="Ward 3",
                lines=[LineIn(gtin=GTIN_A, quantity=5)],
            ),
        )  # fmt: skip
        drafts = [Draft(Movement.RECEIVE, a, 100, today - timedelta(days=10), "r", to=fridge)]
        for i, used in enumerate(USE):  # at midnight: inside its day, never in the future
            at = today - timedelta(days=6 - i)
            drafts.append(Draft(Movement.ISSUE, a, used, at, "ward", frm=fridge))
        transit = Place("transit:T-1", Status.AVAILABLE)
        drafts.append(Draft(Movement.MOVE, a, 5, today, "transfer:T-1", frm=fridge, to=transit))
        await post(conn, drafts)
        await book_count(conn, a, b, today - timedelta(days=1))
        for ref, got in (("ON-TIME", 3), ("LATE", 1)):
            await received_asn(conn, ref, today - timedelta(days=2), today - timedelta(days=got))
        await conn.commit()


async def book_count(conn: AsyncConnection[TupleRow], a: int, b: int, at: datetime) -> None:
    """A cycle count at ``FRIDGE``: lots ``a`` and ``b`` booked 100 each, counted 95 and 105."""
    result = {
        "location_id": FRIDGE, "matched": [], "missing": [], "found": [], "unknown": [],
        "bulk": [
            {"lot_id": a, "status": "available", "on_record": 100, "counted": 95},
            {"lot_id": b, "status": "available", "on_record": 100, "counted": 105},
        ],
    }  # fmt: skip
    await conn.execute(
        "INSERT INTO cycle_counts (location_id, counted_at, counted_by, result)"
        " VALUES (%s, %s, 'c', %s)",
        (FRIDGE, at, Jsonb(result)),
    )


async def received_asn(
    conn: AsyncConnection[TupleRow], ref: str, expected_at: datetime, received_at: datetime
) -> None:
    """An ASN of ``SITE`` expected at ``expected_at`` whose one unit came at ``received_at``."""
    cur = await conn.execute(
        "INSERT INTO asns (site_id, reference, expected_at, status, document)"
        " VALUES (%s, %s, %s, 'received', '{}') RETURNING asn_id",
        (SITE, ref, expected_at),
    )
    row = await cur.fetchone()
    assert row is not None
    await conn.execute(
        "INSERT INTO asn_items (asn_id, epc_uri, unit_kind, received_at)"
        " VALUES (%s, 'k', 'sgtin', %s)",
        (row[0], received_at),
    )
