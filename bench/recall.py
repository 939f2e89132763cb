"""Recall latency on a large ledger: the recall view and the recall hold of one lot.

Builds a throw-away database on the private PostgreSQL cluster with ``--lots`` lots of 50
serialized units each; every unit is received at a dock and put away into one of 40 fridges,
and one unit in ten is issued to a customer: 100 ledger entries per lot plus the issues
(10,000 lots ≈ 1.05 million entries, 500,000 units). The rows are generated with SQL (the hash
chain is not computed: this measures reads), then the balances are derived from the entries.

Figures, for lots drawn at random:

- the recall view (``GET /v1/recalls/lot/{gtin}/{lot}`` without HTTP): on hand by location and
  status, units, containers, issues, excursions during the lot's stays;
- the recall hold (``POST``: every balance to ``recalled``), rolled back after timing;
- baseline, same run: the recall view with index scans switched off (what the lot-keyed
  indexes buy).

With ``--verify``, the time ``coldtrace ledger verify`` takes over the whole ledger (hashes,
balances, head) is printed too.

Run: ``.venv/bin/python -m bench.recall [--lots 10000] [--samples 30] [--verify]``. Never fails
on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, datetime

import psycopg

from cloud.api.recalls import _view
from cloud.ledger.chain import verify
from cloud.recall.service import find_lot, recall_hold
from coldtrace.devservices import PostgresService
from tests.support.databases import DatabaseFactory

UNITS_PER_LOT = 50
FRIDGES = 40

BUILD = [
    "INSERT INTO sites VALUES ('s1', 'Bench site')",
    "INSERT INTO storage_profiles (profile_id, name, action_low, action_high)"
    " VALUES ('fridge', '2-8 °C', 2, 8)",
    "INSERT INTO locations (location_id, site_id, kind, name, profile_id)"
    " VALUES ('dock', 's1', 'dock_door', 'Dock', 'fridge')",
    "INSERT INTO locations (location_id, site_id, kind, name, profile_id)"
    " SELECT 'fridge-' || f, 's1', 'fridge', 'Fridge ' || f, 'fridge'"
    " FROM generate_series(1, {fridges}) f",
    "INSERT INTO products (gtin, name, profile_id)"
    " SELECT lpad(p::text, 14, '0'), 'Product ' || p, 'fridge' FROM generate_series(1, 200) p",
    "INSERT INTO lots (gtin, lot_number, expiry) OVERRIDING SYSTEM VALUE"
    " SELECT lpad((1 + l % 200)::text, 14, '0'), 'L' || l, date '2028-01-01'"
    " FROM generate_series(1, {lots}) l",
    # units: urn:epc:id:sgtin:<lot>.<n>, placed where their last movement left them
    "INSERT INTO units (epc_uri, unit_kind, lot_id, location_id, status)"
    " SELECT 'urn:epc:id:sgtin:0614141.' || l || '.' || n, 'sgtin', l,"
    "  CASE WHEN n % 10 = 0 THEN NULL ELSE 'fridge-' || (1 + (l + n) % {fridges}) END,"
    "  CASE WHEN n % 10 = 0 THEN NULL ELSE 'available' END"
    " FROM generate_series(1, {lots}) l, generate_series(1, {units}) n",
    "INSERT INTO ledger_entries (recorded_at, effective_at, movement, lot_id, epc_uri, quantity,"
    " from_location, from_status, to_location, to_status, actor, reference, counterparty,"
    " prev_hash, entry_hash)"
    " SELECT t, t + make_interval(mins => s), m, l, 'urn:epc:id:sgtin:0614141.' || l || '.' || n,"
    "  1, fl, fs, tl, ts, 'bench', 'asn:PO-' || l, cp, '\\x00',"
    "  sha256(convert_to(l || '.' || n || '.' || s, 'UTF8'))"
    " FROM generate_series(1, {lots}) l, generate_series(1, {units}) n,"
    "  LATERAL (SELECT timestamptz '2025-01-01' + make_interval(hours => l % 8760) AS t) tt,"
    "  LATERAL (VALUES"
    "   (0, 'receive', NULL, NULL, 'dock', 'available', NULL),"
    "   (30, 'put_away', 'dock', 'available', 'fridge-' || (1 + (l + n) % {fridges}),"
    "    'available', NULL),"
    "   (600, CASE WHEN n % 10 = 0 THEN 'issue' END,"
    "    'fridge-' || (1 + (l + n) % {fridges}), 'available', NULL, NULL,"
    "    'Pharmacy ' || (n % 7))"
    "  ) AS v(s, m, fl, fs, tl, ts, cp) WHERE m IS NOT NULL",
    "INSERT INTO balances (lot_id, location_id, status, quantity)"
    " SELECT lot_id, loc, st, sum(q) FROM ("
    "  SELECT lot_id, to_location AS loc, to_status AS st, quantity AS q FROM ledger_entries"
    "   WHERE to_location IS NOT NULL"
    "  UNION ALL SELECT lot_id, from_location, from_status, -quantity FROM ledger_entries"
    "   WHERE from_location IS NOT NULL) x GROUP BY 1, 2, 3 HAVING sum(q) <> 0",
    "ANALYZE",
]


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms"


async def _build(url: str, lots: int) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        # generated rows are consistent by construction: skip per-row foreign-key triggers, and
        # build the schema's secondary indexes once after loading instead of row by row
        await conn.execute("SET session_replication_role = replica")
        cur = await conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i JOIN pg_class c"
            " ON c.relname = i.indexname JOIN pg_index x ON x.indexrelid = c.oid"
            " WHERE i.tablename IN ('ledger_entries', 'units')"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)"
        )
        indexes = await cur.fetchall()
        for name, _ in indexes:
            await conn.execute(f'DROP INDEX "{name}"'.encode())
        for statement in BUILD:
            sql = statement.format(lots=lots, fridges=FRIDGES, units=UNITS_PER_LOT)
            await conn.execute(sql.encode())
        for _, definition in indexes:
            await conn.execute(str(definition).encode())
        await conn.execute("ANALYZE")
        await conn.execute("SET session_replication_role = DEFAULT")
        cur = await conn.execute("SELECT count(*) FROM ledger_entries")
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def _measure(url: str, lots: int, samples: int) -> None:
    rng = random.Random(8)
    picks = [rng.randrange(1, lots + 1) for _ in range(samples)]
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("SET TIME ZONE 'UTC'")
        view: list[float] = []
        for lot in picks:
            gtin = f"{1 + lot % 200:014d}"
            start = time.perf_counter()
            out = await _view(conn, gtin, f"L{lot}")
            view.append(time.perf_counter() - start)
            assert len(out.units) == UNITS_PER_LOT
        await conn.rollback()
        hold: list[float] = []
        for lot in picks[:10]:
            gtin = f"{1 + lot % 200:014d}"
            start = time.perf_counter()
            found = await find_lot(conn, gtin, f"L{lot}")
            await recall_hold(
                conn, found.lot_id, actor="bench", reason="bench", reference="RC-bench",
                effective_at=datetime.now(UTC),
            )  # fmt: skip
            hold.append(time.perf_counter() - start)
            await conn.rollback()
        await conn.execute("SET enable_indexscan = off")
        await conn.execute("SET enable_bitmapscan = off")
        await conn.execute("SET enable_indexonlyscan = off")
        baseline: list[float] = []
        for lot in picks[:3]:
            gtin = f"{1 + lot % 200:014d}"
            start = time.perf_counter()
            await _view(conn, gtin, f"L{lot}")
            baseline.append(time.perf_counter() - start)
        await conn.rollback()
    print(f"recall view ({samples} lots)      {_ms(view)}")
    print(f"recall hold (10 lots, rolled back) {_ms(hold)}")
    print(f"baseline: view without index scans {_ms(baseline)}")
    ratio = statistics.median(baseline) / statistics.median(view)
    print(f"the lot-keyed indexes make the view {ratio:,.0f}x faster")


async def _verify(url: str, entries: int) -> None:
    # the generated rows carry no real chain, so verify reports tampering; its cost is the same
    async with await psycopg.AsyncConnection.connect(url) as conn:
        start = time.perf_counter()
        report = await verify(conn)
        took = time.perf_counter() - start
    assert report.entries == entries
    print(f"ledger verify: {entries:,} entries in {took:.1f} s ({entries / took:,.0f} entries/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lots", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument(
        "--verify", action="store_true", help="also time coldtrace ledger verify over the ledger"
    )
    args = parser.parse_args()
    factory = DatabaseFactory(PostgresService.default().start())
    try:
        url = factory.create("postgresql")
        started = time.perf_counter()
        entries = asyncio.run(_build(url, args.lots))
        built = time.perf_counter() - started
        print(
            f"ledger: {entries:,} entries, {args.lots * UNITS_PER_LOT:,} units, "
            f"{args.lots:,} lots (built in {built:.1f} s)"
        )
        asyncio.run(_measure(url, args.lots, args.samples))
        if args.verify:
            asyncio.run(_verify(url, entries))
    finally:
        factory.drop_all()


if __name__ == "__main__":
    main()
