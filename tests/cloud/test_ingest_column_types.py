"""One validation for ingest and the processor: what ingest accepts, the processor rebuilds.

Ingest checks every value against the type it declares for its column before the binary COPY
(``cloud.ingest.writer.TARGETS``); these tests hold that declaration to the real catalog in both
layouts (a column changed to ``smallint`` or ``varchar(n)`` would otherwise be written by a COPY
that wraps or fails), and send records at the edge of every bound through HTTP — the contract's
path and the columnar fast path — then let a real processor rebuild them and compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from uuid import uuid4

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from cloud.config import ProcessorSettings
from cloud.ingest.writer import TARGETS
from cloud.processing.processor import Processor
from cloud.processing.steps import ProcessingBatch
from cloud.storage.database import make_pool
from protocols.batch import Batch, Sequenced
from protocols.records import (
    INT4_MAX,
    DeadLetter,
    DeviceState,
    DeviceStatus,
    Direction,
    PortalPassage,
    Quality,
    Reading,
    Record,
    TagRead,
)
from tests.support.cloud_ingest import T0, app_client, create_gateway, post

pytestmark = pytest.mark.integration

# What a binary COPY type is called in the catalog (format_type).
_CATALOG = {
    "timestamptz": "timestamp with time zone",
    "text": "text",
    "text[]": "text[]",
    "float8": "double precision",
    "int4": "integer",
    "int8": "bigint",
    "uuid": "uuid",
    "bytea": "bytea",
}


async def test_declared_column_types_are_the_catalogs(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for target in TARGETS.values():
            cur = await conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (target.table,),
            )
            catalog: dict[str, str] = dict(await cur.fetchall())
            declared = {c: _CATALOG[t] for c, t in zip(target.columns, target.types, strict=True)}
            assert {c: catalog[c] for c in declared} == declared, target.table


@dataclass
class Recorder:
    """A processor step that keeps what the processor rebuilt."""

    name: str = "recorder"
    seen: list[Sequenced] = field(default_factory=list)

    async def apply(self, conn: AsyncConnection[TupleRow], batch: ProcessingBatch) -> None:
        self.seen.extend(batch.records)


def _at_the_bounds() -> list[Record]:
    t = T0 + timedelta(minutes=1)
    epc = "E" * 124  # 496 bits, the longest EPC
    long_id = "s" + "x._:/@#+-" * 14 + "y"  # 128 characters, the id pattern's longest
    return [
        Reading(sensor_id=long_id, time=t, value=1000.0, received_at=t),
        Reading(sensor_id="f/t", time=t, value=-273.15, received_at=t),
        Reading(sensor_id="f/rh", time=t, value=100.0, unit="percentRH", received_at=t),
        Reading(sensor_id="f/t", time=t, value=None, quality=Quality.BAD, received_at=t),
        TagRead(reader_id="r1", antenna=65535, epc=epc, rssi=-1.7976931348623157e308,
                first_seen=t, last_seen=t + timedelta(hours=1), count=INT4_MAX, received_at=t),
        TagRead(reader_id="r1", antenna=0, epc="3034", rssi=None, first_seen=t, last_seen=t,
                count=1, received_at=t),
        PortalPassage(passage_id="p-é-🚚-" + "z" * 118, door_id="d1", reader_id="r1",
                      direction=Direction.OUTBOUND, started_at=t, ended_at=t,
                      epcs=(epc, "3034F87A3C000000000003E8")),
        DeviceStatus(device_id="r1", device_type="llrp_reader", state=DeviceState.DEGRADED,
                     detail="Ω" * 2000, time=t),
        DeadLetter(source="m" * 256, reason="r" * 2000, raw=b"\x00\xff" * 512, received_at=t),
    ]  # fmt: skip


async def test_what_ingest_accepts_at_every_bound_the_processor_rebuilds(
    database_url: str,
) -> None:
    gateway = await create_gateway(database_url)
    boot = uuid4()
    mixed = _at_the_bounds()
    readings_only = [r for r in mixed if isinstance(r, Reading)]  # the columnar fast path
    sent = [Sequenced(seq=i + 1, record=r) for i, r in enumerate([*mixed, *readings_only])]
    async with app_client(database_url) as client:
        for part in (sent[: len(mixed)], sent[len(mixed) :]):
            batch = Batch(gateway_id=gateway.gateway_id, boot_id=boot, sent_at=T0 + timedelta(
                hours=2), records=part)  # fmt: skip
            answer = await post(client, gateway, batch)
            assert answer.status_code == 200, answer.text
    recorder = Recorder()
    pool: AsyncConnectionPool[AsyncConnection[TupleRow]] = make_pool(database_url, max_size=2)
    async with pool:
        processor = Processor(pool, [recorder], ProcessorSettings(), listen_url=database_url)
        await processor.drain()
    assert recorder.seen == sent
