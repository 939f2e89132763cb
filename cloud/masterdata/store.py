"""Sites, locations, products and lots in the database (inside the caller's transaction).

Every write validates its references first and raises the package's errors, so a caller never
has to read a constraint violation. Location writes take one transaction-scoped advisory lock:
two concurrent re-parentings could otherwise each pass the cycle check and close a loop together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.masterdata import (
    InvalidMasterDataError,
    MasterDataConflictError,
    UnknownReferenceError,
)
from cloud.masterdata.values import LOCATION_KINDS, valid_gtin14, valid_timezone

# An arbitrary constant naming "the location hierarchy" for pg_advisory_xact_lock.
_HIERARCHY_LOCK = 0x636F_6C64_6C6F_63


@dataclass(frozen=True)
class Site:
    site_id: str
    name: str
    timezone: str


@dataclass(frozen=True)
class Location:
    location_id: str
    site_id: str
    parent_id: str | None
    kind: str
    name: str
    profile_id: str | None


@dataclass(frozen=True)
class Product:
    gtin: str
    name: str
    profile_id: str
    stability_budget: timedelta


@dataclass(frozen=True)
class Lot:
    lot_id: int
    gtin: str
    lot_number: str
    expiry: date | None
    status: str
    created_at: datetime


async def _exists(conn: AsyncConnection[TupleRow], table: str, key: str, value: str) -> bool:
    # table and key are constants of this module, never user input
    cur = await conn.execute(f"SELECT 1 FROM {table} WHERE {key} = %s", (value,))
    return await cur.fetchone() is not None


async def _require(
    conn: AsyncConnection[TupleRow], what: str, table: str, key: str, value: str
) -> None:
    if not await _exists(conn, table, key, value):
        raise UnknownReferenceError(f"no {what} {value!r}")


async def put_site(conn: AsyncConnection[TupleRow], site: Site) -> Site | None:
    """Creates or updates ``site``; returns what it replaced (None when new)."""
    valid_timezone(site.timezone)
    cur = await conn.execute(
        "SELECT site_id, name, timezone FROM sites WHERE site_id = %s FOR UPDATE", (site.site_id,)
    )
    row = await cur.fetchone()
    await conn.execute(
        "INSERT INTO sites (site_id, name, timezone) VALUES (%s, %s, %s) ON CONFLICT (site_id)"
        " DO UPDATE SET name = EXCLUDED.name, timezone = EXCLUDED.timezone",
        (site.site_id, site.name, site.timezone),
    )
    return Site(*row) if row else None


async def list_sites(conn: AsyncConnection[TupleRow]) -> list[Site]:
    cur = await conn.execute("SELECT site_id, name, timezone FROM sites ORDER BY site_id")
    return [Site(*row) for row in await cur.fetchall()]


_LOCATION_COLUMNS = "location_id, site_id, parent_id, kind, name, profile_id"


async def get_location(conn: AsyncConnection[TupleRow], location_id: str) -> Location | None:
    cur = await conn.execute(
        f"SELECT {_LOCATION_COLUMNS} FROM locations WHERE location_id = %s", (location_id,)
    )
    row = await cur.fetchone()
    return Location(*row) if row else None


async def _check_parent(conn: AsyncConnection[TupleRow], loc: Location) -> None:
    if loc.parent_id is None:
        return
    if loc.parent_id == loc.location_id:
        raise MasterDataConflictError(f"location {loc.location_id!r} cannot be its own parent")
    parent = await get_location(conn, loc.parent_id)
    if parent is None:
        raise UnknownReferenceError(f"no parent location {loc.parent_id!r}")
    if parent.site_id != loc.site_id:
        raise InvalidMasterDataError(
            f"parent {loc.parent_id!r} is in site {parent.site_id!r}, not {loc.site_id!r}"
        )
    cur = await conn.execute(
        "WITH RECURSIVE up(id) AS (SELECT %(parent)s::text UNION"
        " SELECT l.parent_id FROM locations l JOIN up ON l.location_id = up.id"
        " WHERE l.parent_id IS NOT NULL) SELECT 1 FROM up WHERE id = %(me)s",
        {"parent": loc.parent_id, "me": loc.location_id},
    )
    if await cur.fetchone() is not None:
        raise MasterDataConflictError(
            f"parent {loc.parent_id!r} is inside {loc.location_id!r}: that would make a cycle"
        )


async def put_location(conn: AsyncConnection[TupleRow], loc: Location) -> Location | None:
    """Creates or updates ``loc``; returns what it replaced (None when new)."""
    if loc.kind not in LOCATION_KINDS:
        raise InvalidMasterDataError(f"unknown location kind {loc.kind!r}")
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_HIERARCHY_LOCK,))
    await _require(conn, "site", "sites", "site_id", loc.site_id)
    if loc.profile_id is not None:
        await _require(conn, "storage profile", "storage_profiles", "profile_id", loc.profile_id)
    await _check_parent(conn, loc)
    previous = await get_location(conn, loc.location_id)
    if previous is not None and previous.site_id != loc.site_id:
        cur = await conn.execute(
            "SELECT 1 FROM locations WHERE parent_id = %s LIMIT 1", (loc.location_id,)
        )
        if await cur.fetchone() is not None:
            raise MasterDataConflictError(
                f"location {loc.location_id!r} holds other locations: move them before its site"
            )
    await conn.execute(
        f"INSERT INTO locations ({_LOCATION_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (location_id) DO UPDATE SET site_id = EXCLUDED.site_id,"
        " parent_id = EXCLUDED.parent_id, kind = EXCLUDED.kind, name = EXCLUDED.name,"
        " profile_id = EXCLUDED.profile_id",
        (loc.location_id, loc.site_id, loc.parent_id, loc.kind, loc.name, loc.profile_id),
    )
    return previous


async def list_locations(conn: AsyncConnection[TupleRow], site_id: str | None) -> list[Location]:
    cur = await conn.execute(
        f"SELECT {_LOCATION_COLUMNS} FROM locations"
        " WHERE %(site)s::text IS NULL OR site_id = %(site)s ORDER BY site_id, location_id",
        {"site": site_id},
    )
    return [Location(*row) for row in await cur.fetchall()]


_PRODUCT_COLUMNS = "gtin, name, profile_id, stability_budget"


async def put_product(conn: AsyncConnection[TupleRow], product: Product) -> Product | None:
    """Creates or updates ``product``; returns what it replaced (None when new)."""
    valid_gtin14(product.gtin)
    if product.stability_budget < timedelta(0):
        raise InvalidMasterDataError("a stability budget cannot be negative")
    await _require(conn, "storage profile", "storage_profiles", "profile_id", product.profile_id)
    cur = await conn.execute(
        f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE gtin = %s FOR UPDATE", (product.gtin,)
    )
    row = await cur.fetchone()
    await conn.execute(
        f"INSERT INTO products ({_PRODUCT_COLUMNS}) VALUES (%s, %s, %s, %s) ON CONFLICT (gtin)"
        " DO UPDATE SET name = EXCLUDED.name, profile_id = EXCLUDED.profile_id,"
        " stability_budget = EXCLUDED.stability_budget",
        (product.gtin, product.name, product.profile_id, product.stability_budget),
    )
    return Product(*row) if row else None


async def get_product(conn: AsyncConnection[TupleRow], gtin: str) -> Product | None:
    cur = await conn.execute(f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE gtin = %s", (gtin,))
    row = await cur.fetchone()
    return Product(*row) if row else None


async def list_products(conn: AsyncConnection[TupleRow]) -> list[Product]:
    cur = await conn.execute(f"SELECT {_PRODUCT_COLUMNS} FROM products ORDER BY gtin")
    return [Product(*row) for row in await cur.fetchall()]


_LOT_COLUMNS = "lot_id, gtin, lot_number, expiry, status, created_at"


async def create_lot(
    conn: AsyncConnection[TupleRow], *, gtin: str, lot_number: str, expiry: date | None
) -> Lot:
    """Registers a new lot (status ``available``); an existing (gtin, lot number) is a conflict."""
    valid_gtin14(gtin)
    await _require(conn, "product", "products", "gtin", gtin)
    cur = await conn.execute(
        f"INSERT INTO lots (gtin, lot_number, expiry) VALUES (%s, %s, %s)"
        f" ON CONFLICT (gtin, lot_number) DO NOTHING RETURNING {_LOT_COLUMNS}",
        (gtin, lot_number, expiry),
    )
    row = await cur.fetchone()
    if row is None:
        raise MasterDataConflictError(f"lot {lot_number!r} of {gtin} already exists")
    return Lot(*row)


async def list_lots(
    conn: AsyncConnection[TupleRow], *, gtin: str | None, status: str | None, limit: int
) -> list[Lot]:
    cur = await conn.execute(
        f"SELECT {_LOT_COLUMNS} FROM lots WHERE (%(gtin)s::text IS NULL OR gtin = %(gtin)s)"
        " AND (%(status)s::text IS NULL OR status = %(status)s) ORDER BY lot_id LIMIT %(limit)s",
        {"gtin": gtin, "status": status, "limit": limit},
    )
    return [Lot(*row) for row in await cur.fetchall()]
