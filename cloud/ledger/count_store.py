"""Cycle counts in the database: take a count (compare and keep it), confirm it (adjust)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any, cast

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from cloud.ledger import InvalidMovementError, UnknownLotError
from cloud.ledger.core import Place, Status
from cloud.ledger.counting import BulkLine, CountResult, Elsewhere, OnRecord, adjustments, compare
from cloud.ledger.service import post


async def _units_read(
    conn: AsyncConnection[TupleRow], location_id: str, reads: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, Elsewhere]]:
    """Reads keyed as the units table knows them, and the read units recorded elsewhere."""
    cur = await conn.execute(
        "SELECT epc_uri, gs1_key, coalesce(gs1_key, epc_uri), lot_id, location_id, status"
        " FROM units WHERE unit_kind = 'sgtin' AND (gs1_key = ANY(%s) OR epc_uri = ANY(%s))",
        (list(reads), list(reads.values())),
    )
    read: dict[str, str] = dict(reads)
    elsewhere: dict[str, Elsewhere] = {}
    for epc, key, match_key, lot_id, loc, status in await cur.fetchall():
        if key is None:  # a unit stored without GS1 key: match it by its URI
            original = next(k for k, uri in reads.items() if uri == epc)
            read[str(match_key)] = read.pop(original)
        if loc != location_id and lot_id is not None:
            place = Place(str(loc), Status(status)) if loc is not None else None
            elsewhere[str(match_key)] = Elsewhere(str(epc), int(lot_id), place)
    return read, elsewhere


async def take_count(
    conn: AsyncConnection[TupleRow],
    *,
    location_id: str,
    reads: Mapping[str, str],
    counted: Sequence[tuple[int, Status, int]],
    actor: str,
    at: datetime,
) -> tuple[int, CountResult]:
    """Compares and stores a count; ``counted``: (lot, status, quantity) of untagged stock."""
    cur = await conn.execute("SELECT 1 FROM locations WHERE location_id = %s", (location_id,))
    if await cur.fetchone() is None:
        raise UnknownLotError(f"unknown location {location_id!r}")
    cur = await conn.execute(
        "SELECT epc_uri, coalesce(gs1_key, epc_uri), lot_id, status FROM units"
        " WHERE location_id = %s AND unit_kind = 'sgtin' AND lot_id IS NOT NULL",
        (location_id,),
    )
    here = [OnRecord(str(e), str(k), int(lot), Status(s)) for e, k, lot, s in await cur.fetchall()]
    read, elsewhere = await _units_read(conn, location_id, reads)
    bulk: list[BulkLine] = []
    for lot_id, status, quantity in counted:
        cur = await conn.execute(
            "SELECT coalesce((SELECT quantity FROM balances WHERE lot_id = %(lot)s"
            " AND location_id = %(loc)s AND status = %(st)s), 0) - (SELECT count(*) FROM units"
            " WHERE lot_id = %(lot)s AND location_id = %(loc)s AND status = %(st)s)",
            {"lot": lot_id, "loc": location_id, "st": status.value},
        )
        row = await cur.fetchone()
        assert row is not None
        bulk.append(BulkLine(lot_id, status, int(row[0]), quantity))
    result = compare(location_id, here, read, elsewhere, bulk)
    cur = await conn.execute(
        "INSERT INTO cycle_counts (location_id, counted_at, counted_by, result)"
        " VALUES (%s, %s, %s, %s) RETURNING count_id",
        (location_id, at, actor, Jsonb(_to_json(result))),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), result


def _to_json(result: CountResult) -> dict[str, Any]:
    return cast(dict[str, Any], _plain(asdict(result)))


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Status):
        return value.value
    return value


def _place(raw: Mapping[str, Any] | None) -> Place | None:
    return Place(raw["location_id"], Status(raw["status"])) if raw else None


def from_json(raw: Mapping[str, Any]) -> CountResult:
    return CountResult(
        raw["location_id"],
        tuple(raw["matched"]),
        tuple(OnRecord(m["epc_uri"], m["gs1_key"], m["lot_id"], Status(m["status"]))
              for m in raw["missing"]),
        tuple(Elsewhere(f["epc_uri"], f["lot_id"], _place(f["place"])) for f in raw["found"]),
        tuple(raw["unknown"]),
        tuple(BulkLine(b["lot_id"], Status(b["status"]), b["on_record"], b["counted"])
              for b in raw["bulk"]),
    )  # fmt: skip


async def confirm_count(
    conn: AsyncConnection[TupleRow], count_id: int, *, actor: str, reason: str, at: datetime
) -> int:
    """Books the count's differences; returns the entries written. Refuses a closed count, and
    (through the ledger) a count the stock has moved away from since it was taken."""
    cur = await conn.execute(
        "SELECT status, result FROM cycle_counts WHERE count_id = %s FOR UPDATE", (count_id,)
    )
    row = await cur.fetchone()
    if row is None:
        raise UnknownLotError(f"no count {count_id}")
    if row[0] != "open":
        raise InvalidMovementError(f"count {count_id} is {row[0]}")
    drafts = adjustments(from_json(row[1]), at, actor, reason)
    drafts = [replace(d, reference=f"count:{count_id}") for d in drafts]
    await post(conn, drafts)
    await conn.execute(
        "UPDATE cycle_counts SET status = 'confirmed', confirmed_by = %s, confirmed_at = %s"
        " WHERE count_id = %s",
        (actor, at, count_id),
    )
    return len(drafts)
