"""The demo's master data: a pharmacy warehouse with fridges, freezers, a room and two dock doors.

One description drives both sides: ``simulated_site()`` is what the temperature simulators
model (and which logger each unit has), ``coldtrace.demo_commission`` builds the matching site
through the cloud's HTTP API (site, zone, storage units with their standard profiles, sensors,
products, the gateway and its sources), ``load(conn)`` adds the lots on hand, the ASNs of the
pallets the dock doors will see and two users, and ``PALLETS`` says which pallet passes which
door, so the ASNs and the RFID scene agree.

>>> sorted(u.unit_id for u in simulated_site().units)
['freezer-1', 'freezer-2', 'fridge-1', 'fridge-2', 'room-1']
>>> [p.door for p in PALLETS]
['dock-1', 'dock-2', 'dock-2']
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.auth.model import Role
from cloud.auth.service import add_user
from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import ensure_lot, post
from cloud.receiving.asn import AsnContainer, AsnIn, AsnLine
from cloud.receiving.store import create_asn
from simulators.scene import sscc18
from simulators.site import MqttLogger, OpcUaLogger, Shape, SiteSpec, UnitSpec
from simulators.thermal import UnitProfile

SITE_ID = "demo-site"
ZONE_ID = "demo-cold-zone"
GATEWAY_ID = "demo-gw"
COMPANY_PREFIX = "0614141"
FAILING_UNIT = "fridge-1"
"""The fridge whose compressor fails in the demo scenario."""


@dataclass(frozen=True)
class Unit:
    """A storage unit: its location, profile, simulated model and the sensor id the edge sees."""

    unit_id: str
    name: str
    kind: str
    profile_id: str
    sim_profile: UnitProfile
    sensor_id: str
    logger: OpcUaLogger | MqttLogger


UNITS = (
    Unit("fridge-1", "Vaccine fridge 1", "fridge", "std-refrigerated",
         UnitProfile.REFRIGERATOR, "fridge-1.t", OpcUaLogger()),
    Unit("fridge-2", "Vaccine fridge 2", "fridge", "std-refrigerated",
         UnitProfile.REFRIGERATOR, "fridge-2.t",
         MqttLogger(shape=Shape.PLAIN, device_id="fridge-2.t")),
    Unit("freezer-1", "Plasma freezer", "freezer", "std-frozen",
         UnitProfile.FREEZER, "freezer-1.t", OpcUaLogger()),
    Unit("freezer-2", "Freezer 2 (LoRaWAN)", "freezer", "std-frozen",
         UnitProfile.FREEZER, "24e124136b502217",
         MqttLogger(shape=Shape.CHIRPSTACK, device_id="24e124136b502217",
                    interval=timedelta(minutes=5))),
    Unit("room-1", "Controlled room", "room", "std-controlled-room",
         UnitProfile.CONTROLLED_ROOM, "room-1.t",
         MqttLogger(shape=Shape.PLAIN, device_id="room-1.t")),
)  # fmt: skip

DOORS = {"dock-1": ("Dock door 1", "reader-1"), "dock-2": ("Dock door 2", "reader-2")}
"""Dock door location id -> (name, LLRP reader id); the door id is the location id."""

# GTIN, name, profile, stability budget
PRODUCTS = (
    ("00614141000012", "Influenza vaccine 0.5 ml", "std-refrigerated", timedelta(hours=2)),
    ("00614141000029", "Insulin pen 100 U/ml", "std-refrigerated", timedelta(hours=12)),
    ("00614141000036", "Fresh frozen plasma", "std-frozen", timedelta(hours=1)),
    ("00614141000043", "Amoxicillin 500 mg tablets", "std-controlled-room", timedelta(days=14)),
)
PALLET_GTIN = "00614141000012"
INBOUND_LOT = "FLU-2611"

# lot number, GTIN, unit, quantity on hand
STOCK = (
    ("INS-2609", "00614141000029", "fridge-1", 40),
    ("FLU-2608", "00614141000012", "fridge-1", 60),
    ("FLU-2607", "00614141000012", "fridge-2", 80),
    ("FFP-2605", "00614141000036", "freezer-1", 24),
    ("AMX-2603", "00614141000043", "room-1", 300),
)


@dataclass(frozen=True)
class Pallet:
    """A pallet through a door: SSCC serial reference ``number``, cases ``first_serial``…

    ``asn`` is the ASN announcing it (None: nobody announced it); ``announced`` cases are
    listed on the ASN, ``cases`` are physically on the pallet (more: a case nobody ordered).
    """

    number: int
    door: str
    cases: int
    announced: int
    asn: str | None

    @property
    def sscc(self) -> str:
        return sscc18(COMPANY_PREFIX, self.number)

    @property
    def first_serial(self) -> int:
        return self.number * 1000


PALLETS = (
    Pallet(1, "dock-1", cases=12, announced=12, asn="ASN-1001"),
    Pallet(2, "dock-2", cases=13, announced=12, asn="ASN-1002"),  # one case too many
    Pallet(3, "dock-2", cases=6, announced=6, asn=None),  # not announced
)


def simulated_site() -> SiteSpec:
    """What the temperature simulators model (seeds fixed: the demo plays the same each time)."""
    return SiteSpec(
        site_id=SITE_ID,
        units=tuple(
            UnitSpec(
                unit_id=u.unit_id,
                name=u.name,
                profile=u.sim_profile,
                seed=200 + i,
                door_openings_per_hour=1.0,
                logger=u.logger,
            )
            for i, u in enumerate(UNITS)
        ),
    )


def asns(expected_at: datetime) -> list[AsnIn]:
    """The ASNs of the announced pallets."""
    out = []
    for p in PALLETS:
        if p.asn is None:
            continue
        serials = [str(p.first_serial + i) for i in range(p.announced)]
        line = AsnLine(
            gtin=PALLET_GTIN, lot=INBOUND_LOT, expiry=date(2027, 6, 30), serials=serials,
            company_prefix_length=len(COMPANY_PREFIX),
        )  # fmt: skip
        out.append(
            AsnIn(
                site_id=SITE_ID,
                reference=p.asn,
                supplier="Demo Pharma Distribution",
                expected_at=expected_at,
                containers=[AsnContainer(sscc=p.sscc, contents=[line])],
            )
        )
    return out


@dataclass(frozen=True)
class Credentials:
    gateway_token: str
    qa_token: str
    operator_token: str


async def load(
    conn: AsyncConnection[TupleRow], *, now: datetime, stocked_at: datetime, gateway_token: str
) -> Credentials:
    """Writes the demo's stock, ASNs and users (in the caller's transaction), once the site is
    commissioned through the API (``coldtrace.demo_commission``).

    The stock is received at ``stocked_at`` and put away 20 minutes later: set it inside the
    simulated history, so the lots' exposure is known for their whole stay.
    """
    drafts: list[Draft] = []
    received = stocked_at
    for lot_number, gtin, unit, quantity in STOCK:
        lot = await ensure_lot(conn, gtin=gtin, lot_number=lot_number, expiry=date(2027, 3, 31))
        dock = Place("dock-1", Status.AVAILABLE)
        drafts.append(Draft(Movement.RECEIVE, lot, quantity, received, "demo", to=dock))
        drafts.append(
            Draft(Movement.PUT_AWAY, lot, quantity, received + timedelta(minutes=20), "demo",
                  frm=dock, to=Place(unit, Status.AVAILABLE))
        )  # fmt: skip
    await post(conn, drafts)
    for asn in asns(now):
        await create_asn(conn, asn)
    await conn.execute(  # the name the dashboard shows (``coldtrace cloud gateway name``)
        "UPDATE gateways SET name = 'Warehouse gateway' WHERE gateway_id = %s", (GATEWAY_ID,)
    )
    return Credentials(
        gateway_token=gateway_token,
        qa_token=await add_user(conn, "demo-qa", Role.QA),
        operator_token=await add_user(conn, "demo-operator", Role.OPERATOR),
    )
