"""Two sites, each with a fridge (sensor mounted, a lot inside), a dock door and a gateway.

For tests of the trust boundary between sites: ``gw-1`` writes for ``site-1`` and ``gw-2`` for
``site-2``; site 2 also expects a pallet of 40 units (ASN ``PO-2``) at its dock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from cloud.ingest.auth import add_gateway
from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import ensure_lot, post
from cloud.receiving.asn import AsnIn
from cloud.receiving.store import create_asn
from tests.support.cloud_ingest import Gateway

GTIN = "09506000134352"
PALLET_2 = "106141412345678908"
"""The SSCC site 2's ASN announces (40 units of lot P2)."""


def fridge(site: int) -> str:
    return f"s{site}-fridge"


def sensor(site: int) -> str:
    return f"s{site}-fridge/t"


def dock(site: int) -> str:
    return f"s{site}-dock"


@dataclass(frozen=True)
class TwoSites:
    gateways: dict[int, Gateway]
    lots: dict[int, int]
    """The lot stored in each site's fridge (10 units, available)."""


async def seed_two_sites(url: str, at: datetime) -> TwoSites:
    """Master data, stock in place before ``at``, the ASN and one gateway per site."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute(
            "INSERT INTO products (gtin, name, profile_id, stability_budget)"
            " VALUES (%s, 'Vaccine', 'std-refrigerated', '2 hours')",
            (GTIN,),
        )
        lots: dict[int, int] = {}
        gateways: dict[int, Gateway] = {}
        for n in (1, 2):
            await conn.execute(
                "INSERT INTO sites (site_id, name) VALUES (%s, %s)", (f"site-{n}", f"Site {n}")
            )
            await conn.execute(
                "INSERT INTO locations (location_id, site_id, kind, name, profile_id) VALUES"
                " (%s, %s, 'fridge', 'Fridge', 'std-refrigerated'),"
                " (%s, %s, 'dock_door', 'Dock', NULL)",
                (fridge(n), f"site-{n}", dock(n), f"site-{n}"),
            )
            await conn.execute(
                "INSERT INTO sensors (sensor_id, location_id) VALUES (%s, %s)",
                (sensor(n), fridge(n)),
            )
            lot = await ensure_lot(conn, gtin=GTIN, lot_number=f"L{n}", expiry=None)
            lots[n] = lot
            avail = Status.AVAILABLE
            await post(conn, [
                Draft(Movement.RECEIVE, lot, 10, at - timedelta(hours=2), "dock",
                      to=Place(dock(n), avail)),
                Draft(Movement.PUT_AWAY, lot, 10, at - timedelta(hours=1), "op",
                      frm=Place(dock(n), avail), to=Place(fridge(n), avail)),
            ])  # fmt: skip
            token = await add_gateway(conn, f"gw-{n}", f"site-{n}")
            gateways[n] = Gateway(f"gw-{n}", token)
        asn = {
            "site_id": "site-2",
            "reference": "PO-2",
            "containers": [
                {"sscc": PALLET_2, "contents": [{"gtin": GTIN, "lot": "P2", "quantity": 40}]}
            ],
        }
        await create_asn(conn, AsnIn.model_validate(asn))
        await conn.commit()
    return TwoSites(gateways, lots)
