"""Appending movements: the hash chain lock, balances and unit places kept in step.

``post`` runs inside the caller's transaction and never commits. It locks the chain head first
(``ledger_head`` FOR UPDATE), so concurrent writers append one after the other and every entry's
``prev_hash`` is the hash of the entry before it; then it plans every draft on a ``Book`` loaded
with the balances and units concerned (refusing before writing anything), and writes the entries,
the balances and the units. Entries are signed by the signer bound for the task
(``signing.bound``), unsigned when none is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.ledger import InvalidMovementError, UnknownLotError, signing
from cloud.ledger.core import BalanceKey, Book, Draft, Place, Status, UnitPlace, entry_hash


@dataclass(frozen=True)
class Head:
    last_hash: bytes
    recorded_at: datetime


async def lock_head(conn: AsyncConnection[TupleRow]) -> Head:
    """Takes the chain lock for the rest of the transaction (re-entrant within it)."""
    cur = await conn.execute("SELECT last_hash, now() FROM ledger_head FOR UPDATE")
    row = await cur.fetchone()
    if row is None:
        raise InvalidMovementError("ledger_head is missing: the database is not migrated")
    return Head(bytes(row[0]), cast(datetime, row[1]))


def _keys(drafts: Sequence[Draft]) -> list[BalanceKey]:
    keys: dict[BalanceKey, None] = {}
    for d in drafts:
        for side in (d.frm, d.to):
            if side is not None:
                keys[BalanceKey(d.lot_id, side.location_id, side.status)] = None
    return list(keys)


async def _load_book(conn: AsyncConnection[TupleRow], drafts: Sequence[Draft]) -> Book:
    keys = _keys(drafts)
    lots = [k.lot_id for k in keys]
    locs = [k.location_id for k in keys]
    stats = [k.status.value for k in keys]
    book = Book()
    cur = await conn.execute(
        "SELECT b.lot_id, b.location_id, b.status, b.quantity FROM balances b"
        " JOIN unnest(%s::bigint[], %s::text[], %s::text[]) AS k(lot_id, location_id, status)"
        " USING (lot_id, location_id, status) ORDER BY 1, 2, 3 FOR UPDATE OF b",
        (lots, locs, stats),
    )
    for lot_id, loc, status, qty in await cur.fetchall():
        book.balances[BalanceKey(int(lot_id), str(loc), Status(status))] = int(qty)
    cur = await conn.execute(
        "SELECT u.lot_id, u.location_id, u.status, count(*) FROM units u"
        " JOIN unnest(%s::bigint[], %s::text[], %s::text[]) AS k(lot_id, location_id, status)"
        " USING (lot_id, location_id, status) GROUP BY 1, 2, 3",
        (lots, locs, stats),
    )
    for lot_id, loc, status, count in await cur.fetchall():
        book.serialized[BalanceKey(int(lot_id), str(loc), Status(status))] = int(count)
    epcs = sorted({d.epc_uri for d in drafts if d.epc_uri is not None})
    if epcs:
        cur = await conn.execute(
            "SELECT epc_uri, lot_id, location_id, status FROM units WHERE epc_uri = ANY(%s)"
            " ORDER BY epc_uri FOR UPDATE",
            (epcs,),
        )
        for epc, lot_id, loc, status in await cur.fetchall():
            place = Place(str(loc), Status(status)) if loc is not None else None
            book.units[str(epc)] = UnitPlace(int(lot_id) if lot_id is not None else None, place)
        missing = [e for e in epcs if e not in book.units]
        if missing:
            raise InvalidMovementError(f"unknown unit(s), register them first: {missing[:5]}")
    return book


async def post(conn: AsyncConnection[TupleRow], drafts: Sequence[Draft]) -> list[int]:
    """Appends the drafts in order; returns their entry ids. Refuses all if one is refused."""
    if not drafts:
        return []
    head = await lock_head(conn)
    book = await _load_book(conn, drafts)
    touched_units = {d.epc_uri for d in drafts if d.epc_uri is not None}
    for draft in drafts:
        book.post(draft)
    try:
        await _write_balances(conn, book, _keys(drafts))
        await _write_units(conn, book, touched_units)
        ids = await _write_entries(conn, drafts, head)
    except psycopg.errors.ForeignKeyViolation as err:
        raise UnknownLotError(
            f"a lot or location of these movements does not exist: {err}"
        ) from err
    return ids


async def _write_balances(
    conn: AsyncConnection[TupleRow], book: Book, keys: list[BalanceKey]
) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO balances (lot_id, location_id, status, quantity) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (lot_id, location_id, status)"
            " DO UPDATE SET quantity = EXCLUDED.quantity, updated_at = now()",
            [(k.lot_id, k.location_id, k.status.value, book.balances.get(k, 0)) for k in keys],
        )


async def _write_units(conn: AsyncConnection[TupleRow], book: Book, touched: set[str]) -> None:
    # Whole-balance moves first, in order; then the final place of each unit moved one by one.
    for key, to in book.carried:
        await conn.execute(
            "UPDATE units SET location_id = %s, status = %s, updated_at = now()"
            " WHERE lot_id = %s AND location_id = %s AND status = %s",
            (
                to.location_id if to else None,
                to.status.value if to else None,
                key.lot_id,
                key.location_id,
                key.status.value,
            ),
        )
    rows = []
    for epc in sorted(touched):
        place = book.units[epc].place
        rows.append(
            (place.location_id if place else None, place.status.value if place else None, epc)
        )
    if rows:
        await conn.execute(
            "UPDATE units u SET location_id = v.loc, status = v.status, updated_at = now()"
            " FROM unnest(%s::text[], %s::text[], %s::text[]) AS v(loc, status, epc)"
            " WHERE u.epc_uri = v.epc",
            ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]),
        )


async def _write_entries(
    conn: AsyncConnection[TupleRow], drafts: Sequence[Draft], head: Head
) -> list[int]:
    prev = head.last_hash
    signer = signing.current()
    rows = []
    for d in drafts:
        digest = entry_hash(d, recorded_at=head.recorded_at, prev_hash=prev)
        rows.append(
            (
                head.recorded_at,
                d.effective_at,
                d.movement.value,
                d.lot_id,
                d.epc_uri,
                d.quantity,
                d.frm.location_id if d.frm else None,
                d.frm.status.value if d.frm else None,
                d.to.location_id if d.to else None,
                d.to.status.value if d.to else None,
                d.actor,
                d.reason,
                d.reference,
                d.counterparty,
                d.signature_meaning,
                prev,
                digest,
                signer.sign_entry(digest) if signer else None,
                signer.key_id if signer else None,
            )
        )
        prev = digest
    ids: list[int] = []
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO ledger_entries (recorded_at, effective_at, movement, lot_id, epc_uri,"
            " quantity, from_location, from_status, to_location, to_status, actor, reason,"
            " reference, counterparty, signature_meaning, prev_hash, entry_hash, signature,"
            " signing_key_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING entry_id",
            rows,
            returning=True,
        )
        while True:
            row = await cur.fetchone()
            if row is not None:
                ids.append(int(row[0]))
            if not cur.nextset():
                break
    await conn.execute("UPDATE ledger_head SET last_hash = %s, last_entry_id = %s", (prev, ids[-1]))
    return ids
