"""Master data for ledger, receiving and recall tests: one site, a dock door, two fridges."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

GTIN_A = "00614141123452"
GTIN_B = "00614141999996"
SITE = "site-1"
DOCK = "dock-1"
FRIDGE = "fridge-1"
FRIDGE_2 = "fridge-2"


async def seed(conn: AsyncConnection[TupleRow]) -> None:
    """Inserts the master data (the caller commits)."""
    await conn.execute("INSERT INTO sites (site_id, name) VALUES (%s, 'Site one')", (SITE,))
    await conn.execute(
        "INSERT INTO storage_profiles (profile_id, name, action_low, action_high)"
        " VALUES ('refrigerated', '2-8 °C', 2, 8)"
    )
    for loc, kind in ((DOCK, "dock_door"), (FRIDGE, "fridge"), (FRIDGE_2, "fridge")):
        await conn.execute(
            "INSERT INTO locations (location_id, site_id, kind, name, profile_id)"
            " VALUES (%s, %s, %s, %s, 'refrigerated')",
            (loc, SITE, kind, loc),
        )
    for gtin, name in ((GTIN_A, "Vaccine A"), (GTIN_B, "Insulin B")):
        await conn.execute(
            "INSERT INTO products (gtin, name, profile_id) VALUES (%s, %s, 'refrigerated')",
            (gtin, name),
        )
