"""An outbound passage at a site with transfers loading: verify against the order, ship to transit.

While a site has open transfers, its outbound doors load against them: the passage is judged
against the transfer whose lines its units match best (the oldest on a tie). Every unit read,
and every unit and untagged quantity inside a container read, is checked:

- it must be on hand at the site, usable (available or released), its lot neither quarantined,
  rejected nor recalled, not past its expiry and not short-dated for the receiver;
- it must be ordered: a line of its GTIN (and lot, when the line names one) still open.

What passes moves in the ledger from where it was to the transfer's transit location (status
kept); what does not is *blocked*: it stays where the ledger had it and the attempt is recorded,
so the door's alarm can be answered and the unit brought back. A container passes whole or is
blocked whole (with the reasons of its contents): a pallet with one recalled case must not go.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import post
from cloud.receiving.matching import Reads
from cloud.transfers.picking import Line, refusal
from cloud.transfers.store import Transfer, allocate, open_transfers_from, shipped_lots, today
from protocols.records import PortalPassage


@dataclass
class Loading:
    """What one outbound passage did for a transfer."""

    transfer_id: int
    reference: str
    shipped: list[Draft] = field(default_factory=list)
    blocked: list[tuple[str, str]] = field(default_factory=list)  # (item, reason)
    already: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Unit:
    epc_uri: str
    key: str | None
    kind: str
    parent: str | None
    lot_id: int | None
    gtin: str | None
    lot_number: str | None
    expiry: date | None
    lot_status: str | None
    location_id: str | None
    status: str | None
    site_id: str | None
    location_kind: str | None


async def _units(conn: AsyncConnection[TupleRow], keys: list[str]) -> list[_Unit]:
    cur = await conn.execute(
        "WITH RECURSIVE tree AS ("
        " SELECT epc_uri FROM units WHERE gs1_key = ANY(%s)"
        " UNION SELECT u.epc_uri FROM units u JOIN tree t ON u.parent_uri = t.epc_uri)"
        " SELECT u.epc_uri, u.gs1_key, u.unit_kind, u.parent_uri, u.lot_id, l.gtin,"
        " l.lot_number, l.expiry, l.status, u.location_id, u.status, loc.site_id, loc.kind"
        " FROM tree JOIN units u USING (epc_uri) LEFT JOIN lots l USING (lot_id)"
        " LEFT JOIN locations loc ON loc.location_id = u.location_id ORDER BY u.epc_uri",
        (keys,),
    )
    return [_Unit(*row) for row in await cur.fetchall()]


def _choose(transfers: list[Transfer], gtins: Counter[str]) -> Transfer:
    def score(t: Transfer) -> int:
        wanted = {line.gtin for line in t.lines}
        return sum(n for g, n in gtins.items() if g in wanted)

    return max(transfers, key=lambda t: (score(t), -t.transfer_id))


async def load_passage(
    conn: AsyncConnection[TupleRow], p: PortalPassage, reads: Reads, site_id: str
) -> Loading | None:
    """Ships the passage into transit for an open transfer; None when the site has none."""
    transfers = await open_transfers_from(conn, site_id)
    if not transfers:
        return None
    units = await _units(conn, list(reads.keys))
    t = _choose(transfers, Counter(u.gtin for u in units if u.gtin and u.kind == "sgtin"))
    out = Loading(t.transfer_id, t.reference)
    known = {u.key for u in units if u.key}
    out.blocked += [(k, "unknown unit") for k in sorted(set(reads.keys) - known)]
    judge = _Judge(conn, t, p, site_id, await shipped_lots(conn, t.transfer_id))
    by_parent: dict[str | None, list[_Unit]] = {}
    for u in units:
        by_parent.setdefault(u.parent, []).append(u)
    read_uris = {u.epc_uri for u in units if u.key in reads.keys}
    for u in units:
        # judge what was read at the top: a unit inside a read container goes with it
        if u.epc_uri in read_uris and not (u.parent and u.parent in read_uris):
            await judge.item(u, by_parent, out)
    await post(conn, out.shipped)
    await _record(conn, t, p, out)
    return out


class _Judge:
    def __init__(
        self,
        conn: AsyncConnection[TupleRow],
        t: Transfer,
        p: PortalPassage,
        site_id: str,
        shipped: dict[tuple[str, str], int],
    ) -> None:
        self.conn, self.t, self.p, self.site_id = conn, t, p, site_id
        self.per_lot = dict(shipped)

    def _why(
        self, gtin: str, lot: str, expiry: date | None, lot_status: str, status: str
    ) -> str | None:
        why = refusal(
            status=status, lot_status=lot_status, expiry=expiry,
            on=today(self.p.ended_at), min_remaining=self.t.min_remaining,
        )  # fmt: skip
        if why is not None:
            return why
        return None if _open(self.t.lines, self.per_lot, gtin, lot, 1) else "not ordered"

    async def item(self, u: _Unit, tree: dict[str | None, list[_Unit]], out: Loading) -> None:
        transit = self.t.transit_location_id
        if u.location_id == transit:
            out.already.append(u.key or u.epc_uri)
            return
        if u.kind == "sgtin":
            why = self._unit_why(u)
            if why is not None:
                out.blocked.append((u.key or u.epc_uri, why))
                return
            assert u.gtin
            assert u.lot_number
            self.per_lot[u.gtin, u.lot_number] = self.per_lot.get((u.gtin, u.lot_number), 0) + 1
            out.shipped.append(self._move(u))
            return
        await self._container(u, tree, out)

    def _unit_why(self, u: _Unit) -> str | None:
        if u.lot_id is None or u.location_id is None or u.status is None:
            return "not on hand"
        if u.site_id != self.site_id:
            return f"on hand at site {u.site_id}"
        assert u.gtin
        assert u.lot_number
        return self._why(u.gtin, u.lot_number, u.expiry, str(u.lot_status), u.status)

    def _move(self, u: _Unit) -> Draft:
        assert u.lot_id is not None
        assert u.location_id
        assert u.status
        status = Status(u.status)
        return Draft(
            Movement.MOVE, int(u.lot_id), 1, self.p.ended_at, f"portal:{self.p.door_id}",
            frm=Place(u.location_id, status), to=Place(self.t.transit_location_id, status),
            epc_uri=u.epc_uri, reason=f"loaded through door {self.p.door_id}",
            reference=f"transfer:{self.t.reference}",
        )  # fmt: skip

    async def _container(self, c: _Unit, tree: dict[str | None, list[_Unit]], out: Loading) -> None:
        """A container passes whole (its units and untagged contents) or is blocked whole."""
        before = dict(self.per_lot)
        inner = Loading(out.transfer_id, out.reference)
        for child in tree.get(c.epc_uri, []):
            await self.item(child, tree, inner)
        if c.location_id is not None:
            for draft, why in await self._bulk(c):
                if why is not None:
                    inner.blocked.append(
                        (f"{draft.quantity} of lot {draft.lot_id} in {c.key}", why)
                    )
                else:
                    inner.shipped.append(draft)
        if inner.blocked:
            self.per_lot = before
            reasons = "; ".join(f"{item}: {why}" for item, why in inner.blocked)
            out.blocked.append(
                (c.key or c.epc_uri, f"container holds what may not leave: {reasons}")
            )
            return
        out.shipped += inner.shipped
        out.already += inner.already
        await self.conn.execute(
            "UPDATE units SET location_id = %s, status = 'available', updated_at = now()"
            " WHERE epc_uri = %s",
            (self.t.transit_location_id, c.epc_uri),
        )

    async def _bulk(self, c: _Unit) -> list[tuple[Draft, str | None]]:
        cur = await self.conn.execute(
            "SELECT cc.lot_id, cc.quantity, l.gtin, l.lot_number, l.expiry, l.status,"
            " (SELECT b.status FROM balances b WHERE b.lot_id = cc.lot_id"
            "   AND b.location_id = %s AND b.quantity >= cc.quantity"
            "   ORDER BY b.status IN ('available', 'released') DESC, b.status LIMIT 1)"
            " FROM container_contents cc JOIN lots l USING (lot_id)"
            " WHERE cc.container_key = %s ORDER BY cc.lot_id",
            (c.location_id, c.key),
        )
        out: list[tuple[Draft, str | None]] = []
        for lot_id, qty, gtin, lot, expiry, lot_status, status in await cur.fetchall():
            st = Status(status) if status else Status.AVAILABLE
            draft = Draft(
                Movement.MOVE, int(lot_id), int(qty), self.p.ended_at,
                f"portal:{self.p.door_id}", frm=Place(str(c.location_id), st),
                to=Place(self.t.transit_location_id, st),
                reason=f"loaded in {c.key} through door {self.p.door_id}",
                reference=f"transfer:{self.t.reference}",
            )  # fmt: skip
            why = "not on hand" if status is None else None
            why = why or self._why(str(gtin), str(lot), expiry, str(lot_status), str(status))
            if why is None and not _open(self.t.lines, self.per_lot, str(gtin), str(lot), int(qty)):
                why = "over the ordered quantity"
            if why is None:
                self.per_lot[str(gtin), str(lot)] = self.per_lot.get(
                    (str(gtin), str(lot)), 0
                ) + int(qty)
            out.append((draft, why))
        return out


def _open(
    lines: tuple[Line, ...], per_lot: dict[tuple[str, str], int], gtin: str, lot: str, qty: int
) -> bool:
    """Whether ``qty`` more of the lot still fits the order's open lines."""
    trial = dict(per_lot)
    trial[gtin, lot] = trial.get((gtin, lot), 0) + qty
    done = allocate(lines, trial)
    fitted = sum(done.values())
    return fitted == sum(per_lot.values()) + qty and all(
        done[line.line_no] <= line.quantity for line in lines
    )


async def _record(
    conn: AsyncConnection[TupleRow], t: Transfer, p: PortalPassage, out: Loading
) -> None:
    rows = [
        (t.transfer_id, p.door_id, p.passage_id, p.ended_at,
         d.epc_uri or f"{d.quantity} of lot {d.lot_id}", d.lot_id, d.quantity, "shipped", None)
        for d in out.shipped
    ] + [
        (t.transfer_id, p.door_id, p.passage_id, p.ended_at, item, None, 1, "blocked", why)
        for item, why in out.blocked
    ]  # fmt: skip
    if rows:
        async with conn.cursor() as c:
            await c.executemany(
                "INSERT INTO transfer_door_events (transfer_id, door_id, passage_id, at, item,"
                " lot_id, quantity, outcome, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
