"""Outbound passages: every unit that left, and what its containers held, is issued.

A unit read at an outbound door, and every unit inside a container read (at any depth), is
issued from where the ledger has it, if it is usable (available or released) and its lot is not
past its expiry date. Quarantined, rejected, recalled or expired units are *blocked*: not
issued, reported, so that a person looks at why they left. A container's untagged contents
(``container_contents``, recorded at receipt) are issued from the untagged part of a usable
balance at the container's place; when that stock is not there any more (moved away lot-wise,
or quarantined) it is blocked as well.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.ledger.core import USABLE, Draft, Movement, Place, Status, expired
from cloud.ledger.service import post
from cloud.receiving.matching import Reads
from protocols.records import PortalPassage


@dataclass(frozen=True)
class Departure:
    issued: list[Draft]
    blocked: list[str]
    unknown: list[str]


async def issue_departure(
    conn: AsyncConnection[TupleRow], p: PortalPassage, reads: Reads
) -> Departure:
    """Issues what left; containers that left are no longer anywhere."""
    # every unit read, and every unit inside a container read, that the ledger has on hand
    cur = await conn.execute(
        "WITH RECURSIVE tree AS ("
        " SELECT epc_uri, gs1_key FROM units WHERE gs1_key = ANY(%s)"
        " UNION SELECT u.epc_uri, u.gs1_key FROM units u JOIN tree t ON u.parent_uri = t.epc_uri)"
        " SELECT u.epc_uri, u.gs1_key, u.unit_kind, u.lot_id, u.location_id, u.status, l.expiry"
        " FROM tree JOIN units u USING (epc_uri) LEFT JOIN lots l USING (lot_id)"
        " ORDER BY u.epc_uri",
        (list(reads.keys),),
    )
    rows = await cur.fetchall()
    known = {str(r[1]) for r in rows if r[1] is not None}
    drafts, blocked = _unit_issues(rows, p)
    containers = [str(r[0]) for r in rows if r[2] == "sscc"]
    placed = [(str(r[1]), str(r[4])) for r in rows if r[2] == "sscc" and r[1] and r[4]]
    bulk, bulk_blocked = await _container_bulk(conn, placed, p)
    drafts += bulk
    blocked += bulk_blocked
    await post(conn, drafts)
    await conn.execute(
        "UPDATE units SET location_id = NULL, status = NULL, updated_at = now()"
        " WHERE epc_uri = ANY(%s)",
        (containers,),
    )
    await conn.execute(
        "DELETE FROM container_contents WHERE container_key = ANY(%s)", ([k for k, _ in placed],)
    )
    return Departure(drafts, blocked, sorted(set(reads.keys) - known))


def _unit_issues(rows: list[TupleRow], p: PortalPassage) -> tuple[list[Draft], list[str]]:
    drafts: list[Draft] = []
    blocked: list[str] = []
    for epc, _key, kind, lot_id, loc, status, expiry in rows:
        if kind == "sscc" or loc is None or lot_id is None:
            continue  # a container, or a unit the ledger has not on hand
        if Status(status) not in USABLE:
            blocked.append(f"{epc} ({status})")
            continue
        if expired(expiry, p.ended_at):
            blocked.append(f"{epc} (expired {expiry})")
            continue
        drafts.append(
            Draft(
                Movement.ISSUE,
                int(lot_id),
                1,
                p.ended_at,
                f"portal:{p.door_id}",
                frm=Place(str(loc), Status(status)),
                epc_uri=str(epc),
                reason=f"left through door {p.door_id}",
                reference=f"passage:{p.passage_id}",
            )
        )
    return drafts, blocked


async def _container_bulk(
    conn: AsyncConnection[TupleRow], placed: list[tuple[str, str]], p: PortalPassage
) -> tuple[list[Draft], list[str]]:
    """Issues for the untagged contents of containers that left, from where they were placed.

    The stock is taken from the untagged part of a usable balance at the container's place;
    when there is not enough there (moved away, quarantined) it is reported as blocked instead.
    """
    drafts: list[Draft] = []
    blocked: list[str] = []
    left: dict[tuple[int, str, str], int] = {}
    for key, loc in placed:
        cur = await conn.execute(
            "SELECT c.lot_id, c.quantity, l.expiry FROM container_contents c"
            " JOIN lots l USING (lot_id) WHERE c.container_key = %s ORDER BY c.lot_id",
            (key,),
        )
        for lot_id, qty, expiry in await cur.fetchall():
            if expired(expiry, p.ended_at):
                blocked.append(f"{qty} of lot {lot_id} in {key}: expired {expiry}")
                continue
            status = await _usable_status(conn, int(lot_id), loc, int(qty), left)
            if status is None:
                blocked.append(f"{qty} of lot {lot_id} in {key}: not usable at {loc}")
                continue
            left[int(lot_id), loc, status] -= int(qty)
            drafts.append(
                Draft(
                    Movement.ISSUE,
                    int(lot_id),
                    int(qty),
                    p.ended_at,
                    f"portal:{p.door_id}",
                    frm=Place(loc, Status(status)),
                    reference=f"passage:{p.passage_id}",
                    reason=f"left in {key} through door {p.door_id}",
                )
            )
    return drafts, blocked


async def _usable_status(
    conn: AsyncConnection[TupleRow],
    lot_id: int,
    loc: str,
    qty: int,
    left: dict[tuple[int, str, str], int],
) -> str | None:
    """A usable status with ``qty`` untagged units of the lot at ``loc`` (``left`` caches)."""
    for status in (Status.AVAILABLE.value, Status.RELEASED.value):
        if (lot_id, loc, status) not in left:
            cur = await conn.execute(
                "SELECT coalesce((SELECT quantity FROM balances WHERE lot_id = %(lot)s"
                " AND location_id = %(loc)s AND status = %(st)s), 0) - (SELECT count(*)"
                " FROM units WHERE lot_id = %(lot)s AND location_id = %(loc)s"
                " AND status = %(st)s)",
                {"lot": lot_id, "loc": loc, "st": status},
            )
            row = await cur.fetchone()
            left[lot_id, loc, status] = int(row[0]) if row else 0
        if left[lot_id, loc, status] >= qty:
            return status
    return None
