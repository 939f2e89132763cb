"""A transfer's cast for tests: site 1's stock (ASN ``PO-1``), site 2 and its dock door, the
order ``TR-1`` between them, and ``Doors`` running RFID passages through the receiving step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.processing.steps import ProcessingBatch
from cloud.receiving.step import ReceivingStep
from cloud.transfers.store import TransferIn
from protocols.batch import Sequenced
from protocols.gs1.epc import encode_sgtin96, encode_sscc96
from protocols.records import Direction, PortalPassage
from tests.support.ledger_seed import DOCK, GTIN_A, GTIN_B, SITE

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
PALLET = "106141412345678908"
CASE_1 = "006141410000000012"
CASE_2 = "006141410000000029"
SITE_2, DOCK_2 = "site-2", "dock-2"
BOOT = UUID(int=18)


def supplier_asn() -> dict[str, Any]:
    """Stock at site 1: a pallet (3 tagged L1, 12 untagged B7), loose L0 units expiring soon."""
    return {
        "site_id": SITE,
        "reference": "PO-1",
        "containers": [
            {"sscc": PALLET},
            {
                "sscc": CASE_1,
                "parent_sscc": PALLET,
                "contents": [
                    {
                        "gtin": GTIN_A,
                        "lot": "L1",
                        "expiry": "2027-01-31",
                        "serials": ["1", "2", "3"],
                    }
                ],
            },
            {
                "sscc": CASE_2,
                "parent_sscc": PALLET,
                "contents": [{"gtin": GTIN_B, "lot": "B7", "expiry": "2027-06-30", "quantity": 12}],
            },
        ],
        "loose": [{"gtin": GTIN_A, "lot": "L0", "expiry": "2026-04-01", "serials": ["90", "91"]}],
    }


class Doors:
    """Runs passages through the receiving step as the processor would."""

    def __init__(self, conn: AsyncConnection[TupleRow]) -> None:
        self.conn = conn
        self.seq = 0

    async def passage(
        self, door: str, direction: Direction, epcs: list[str], at: datetime
    ) -> dict[str, Any]:
        self.seq += 1
        record = PortalPassage(
            passage_id=f"p{self.seq}", door_id=door, reader_id="reader-1", direction=direction,
            started_at=at, ended_at=at, epcs=tuple(epcs),
        )  # fmt: skip
        batch = ProcessingBatch(
            self.seq, "gw-1", BOOT, self.seq, self.seq, at, [Sequenced(seq=self.seq, record=record)]
        )
        await ReceivingStep().apply(self.conn, batch)
        await self.conn.commit()
        cur = await self.conn.execute(
            "SELECT outcome, received, summary FROM receipts ORDER BY receipt_id DESC LIMIT 1"
        )
        row = await cur.fetchone()
        assert row is not None
        return {"outcome": row[0], "count": row[1], **row[2]}


async def balances(conn: AsyncConnection[TupleRow]) -> set[tuple[str, str, str, int]]:
    cur = await conn.execute(
        "SELECT l.lot_number, b.location_id, b.status, b.quantity FROM balances b"
        " JOIN lots l USING (lot_id) WHERE b.quantity > 0"
    )
    return {(str(n), str(loc), str(s), int(q)) for n, loc, s, q in await cur.fetchall()}


def order() -> TransferIn:
    return TransferIn.model_validate(
        {
            "reference": "TR-1", "from_site": SITE, "to_site": SITE_2,
            "lines": [
                {"gtin": GTIN_A, "quantity": 3}, {"gtin": GTIN_B, "lot": "B7", "quantity": 12}
            ],
        }
    )  # fmt: skip


async def stock_in(conn: AsyncConnection[TupleRow], doors: Doors) -> None:
    pallet, loose = encode_sscc96(PALLET, 7), [encode_sgtin96(GTIN_A, s, 7) for s in (90, 91)]
    got = await doors.passage(DOCK, Direction.INBOUND, [pallet, *loose], T0)
    assert got["outcome"] == "complete"


async def add_second_site(conn: AsyncConnection[TupleRow], name: str = "Site two") -> None:
    """Site ``SITE_2`` with its refrigerated dock door ``DOCK_2``, where transfers arrive."""
    await conn.execute("INSERT INTO sites (site_id, name) VALUES (%s, %s)", (SITE_2, name))
    await conn.execute(
        "INSERT INTO locations (location_id, site_id, kind, name, profile_id)"
        " VALUES (%s, %s, 'dock_door', 'Dock two', 'refrigerated')",
        (DOCK_2, SITE_2),
    )
