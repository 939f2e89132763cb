"""A small site for cold-chain tests: two fridges and a room with sensors, lots in each.

Drives batches of readings through the real ingest writer and the real processor with the
cold-chain step, so tests see exactly what production would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from cloud.coldchain.step import ColdChainSettings, ColdChainStep
from cloud.config import ProcessorSettings
from cloud.ingest.auth import add_gateway
from cloud.ingest.writer import store_batch
from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import ensure_lot, post
from cloud.processing.processor import Processor
from protocols.batch import Batch, Sequenced
from protocols.records import Quality, Reading
from simulators.scenarios import ScenarioPlayer
from simulators.thermal import StorageUnitModel, UnitProfile, preset

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
SITE, DOCK = "cc-site", "cc-dock"
FRIDGE_A, FRIDGE_B, ROOM = "cc-fridge-a", "cc-fridge-b", "cc-room"
SENSOR = {FRIDGE_A: "cc-fridge-a/t", FRIDGE_B: "cc-fridge-b/t", ROOM: "cc-room/t"}
GTIN_VACCINE = "09506000134352"
GTIN_TABLETS = "09506000134369"
FAST = ProcessorSettings(
    poll_interval=timedelta(milliseconds=200),
    retry_initial=timedelta(milliseconds=50),
    retry_max=timedelta(milliseconds=200),
    reconnect_delay=timedelta(milliseconds=100),
)


async def seed(conn: AsyncConnection[TupleRow]) -> dict[str, int]:
    """Master data and stock: returns lot ids by name (lots a1, a2 in A, b1 in B, r1 in room)."""
    await conn.execute("INSERT INTO sites (site_id, name) VALUES (%s, 'Cold site')", (SITE,))
    for loc, kind, profile in (
        (DOCK, "dock_door", None),
        (FRIDGE_A, "fridge", "std-refrigerated"),
        (FRIDGE_B, "fridge", "std-refrigerated"),
        (ROOM, "room", "std-controlled-room"),
    ):
        await conn.execute(
            "INSERT INTO locations (location_id, site_id, kind, name, profile_id)"
            " VALUES (%s, %s, %s, %s, %s)",
            (loc, SITE, kind, loc, profile),
        )
    for loc, sensor in SENSOR.items():
        await conn.execute(
            "INSERT INTO sensors (sensor_id, location_id) VALUES (%s, %s)", (sensor, loc)
        )
    await conn.execute(
        "INSERT INTO products (gtin, name, profile_id, stability_budget) VALUES"
        " (%s, 'Vaccine', 'std-refrigerated', '2 hours'),"
        " (%s, 'Tablets', 'std-controlled-room', '3 days')",
        (GTIN_VACCINE, GTIN_TABLETS),
    )
    lots: dict[str, int] = {}
    placed = (("a1", FRIDGE_A, GTIN_VACCINE), ("a2", FRIDGE_A, GTIN_VACCINE),
              ("b1", FRIDGE_B, GTIN_VACCINE), ("r1", ROOM, GTIN_TABLETS))  # fmt: skip
    drafts: list[Draft] = []
    for name, loc, gtin in placed:
        lot = await ensure_lot(conn, gtin=gtin, lot_number=name.upper(), expiry=None)
        lots[name] = lot
        avail = Status.AVAILABLE
        drafts.append(Draft(Movement.RECEIVE, lot, 10, T0 - timedelta(minutes=2), "dock",
                            to=Place(DOCK, avail)))  # fmt: skip
        drafts.append(Draft(Movement.PUT_AWAY, lot, 10, T0, "op",
                            frm=Place(DOCK, avail), to=Place(loc, avail)))  # fmt: skip
    await post(conn, drafts)
    return lots


def readings(
    sensor: str, start: datetime, values: Sequence[float], step: timedelta = timedelta(minutes=1)
) -> list[Reading]:
    return [
        Reading(sensor_id=sensor, time=start + i * step, value=v, received_at=start + i * step)
        for i, v in enumerate(values)
    ]


@dataclass
class Site:
    """The seeded site, a gateway stream, and a processor running only the cold-chain step."""

    url: str
    pool: AsyncConnectionPool[AsyncConnection[TupleRow]]
    lots: dict[str, int]
    settings: ColdChainSettings = field(default_factory=ColdChainSettings)
    gateway_id: str = "cc-gw"
    boot: UUID = field(default_factory=uuid4)
    next_seq: int = 1

    async def send(self, records: Sequence[Reading], *, chunk: int = 2000) -> None:
        """Stores ``records`` as batches (in the order given) and processes them."""
        async with await psycopg.AsyncConnection.connect(self.url) as conn:
            for i in range(0, len(records), chunk):
                part = records[i : i + chunk]
                batch = Batch(
                    gateway_id=self.gateway_id,
                    boot_id=self.boot,
                    sent_at=part[-1].received_at,
                    records=[Sequenced(seq=self.next_seq + j, record=r) for j, r in
                             enumerate(part)],
                )  # fmt: skip
                self.next_seq += len(part)
                await store_batch(conn, batch)
        processor = Processor(self.pool, [ColdChainStep(self.settings)], FAST, listen_url=self.url)
        await processor.drain()
        errors = await self.rows(
            "SELECT last_error FROM processor_streams WHERE last_error IS NOT NULL"
        )
        assert errors == [], errors

    async def rows(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return list(await cur.fetchall())


async def make_site(url: str, pool: AsyncConnectionPool[AsyncConnection[TupleRow]]) -> Site:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        lots = await seed(conn)
        await add_gateway(conn, "cc-gw", SITE)
        await conn.commit()
    return Site(url, pool, lots)


def simulate(
    units: dict[str, StorageUnitModel],
    player: ScenarioPlayer | None,
    start: datetime,
    until: datetime,
    every: timedelta = timedelta(minutes=1),
) -> list[Reading]:
    """Readings of every unit's logger (keyed by location) from ``start`` to ``until``."""
    out: list[Reading] = []
    t = start
    while t < until:
        t += every
        if player is not None:
            player.advance_to(t)
        for loc, unit in units.items():
            unit.advance_to(t)
            sample = unit.read_sensor()
            if sample is None:
                continue  # a silent logger sends nothing
            quality = {"good": Quality.GOOD, "uncertain": Quality.UNCERTAIN}.get(
                sample.status.value, Quality.BAD
            )
            out.append(
                Reading(sensor_id=SENSOR[loc], time=sample.time, value=sample.value,
                        quality=quality, received_at=sample.time)
            )  # fmt: skip
    return out


def site_units(start: datetime) -> dict[str, StorageUnitModel]:
    """Two pharmacy fridges and a controlled room, settled for two hours before ``start``."""
    units = {
        FRIDGE_A: StorageUnitModel(preset(UnitProfile.REFRIGERATOR), seed=11, start=start),
        FRIDGE_B: StorageUnitModel(preset(UnitProfile.REFRIGERATOR), seed=12, start=start),
        ROOM: StorageUnitModel(preset(UnitProfile.CONTROLLED_ROOM), seed=13, start=start),
    }
    for unit in units.values():
        unit.advance(timedelta(hours=2))
    return units
