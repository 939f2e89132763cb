"""Time and values judged against the cloud's own clock (issues 12.3 and 23.1).

A gateway that claims a receipt time a day ahead cannot get readings stamped a day ahead judged,
nor push a device's state or last_seen into the future; its clock skew shows in the device API.
A count that does not fit ``int4`` is refused before the binary COPY could wrap it.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg
import pytest
from pydantic import TypeAdapter

from cloud.ingest import InvalidBatchError
from cloud.ingest.writer import store_batch
from protocols.batch import Batch, Sequenced
from protocols.records import DeviceState, DeviceStatus, Reading, Record, TagRead
from tests.cloud.test_site_scope import batch, pallet_at, process, rows
from tests.support.cloud_ingest import (
    app_client,
    count,
    create_gateway,
    post,
    status,
    viewer_headers,
)
from tests.support.two_sites import dock, seed_two_sites, sensor

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


async def test_a_gateway_clock_a_day_ahead_is_stored_not_judged(timescale_url: str) -> None:
    url = timescale_url
    sites = await seed_two_sites(url, NOW - timedelta(hours=3))
    gw = sites.gateways[1]
    ahead = NOW + timedelta(days=1)
    # 12 °C for 40 minutes a day ahead, and the gateway claims it received them then too
    hot: list[Record] = [
        Reading(sensor_id=sensor(1), time=ahead + timedelta(minutes=i), value=12.0,
                received_at=ahead + timedelta(minutes=i))
        for i in range(40)
    ]  # fmt: skip
    hot.append(status(sensor(1), DeviceState.DEGRADED, ahead))
    hot.append(DeviceStatus(device_id=gw.gateway_id, device_type="gateway",
                            state=DeviceState.ONLINE, time=NOW))  # fmt: skip
    batch = Batch(gateway_id=gw.gateway_id, boot_id=uuid4(), sent_at=ahead,
                  records=[Sequenced(seq=i + 1, record=r) for i, r in enumerate(hot)])  # fmt: skip
    async with app_client(url) as client:
        before = datetime.now(UTC)
        sent = await post(client, gw, batch)
        after = datetime.now(UTC)
        assert sent.status_code == 200, sent.text
        await process(url)
        viewer = await viewer_headers(url)
        shown = await client.get(f"/v1/gateways/{gw.gateway_id}", headers=viewer)
        device = await client.get(f"/v1/devices/{gw.gateway_id}", headers=viewer)
    assert await count(url, "readings", f"sensor_id = '{sensor(1)}'") == 40  # stored as sent
    assert await count(url, "device_status") == 2
    assert await count(url, "excursions") == 0
    assert await rows(url, "SELECT status FROM lots WHERE lot_id = %s", sites.lots[1]) == [
        ("available",)
    ]
    [(last_seen, state, state_at)] = await rows(
        url, "SELECT last_seen_at, last_state, state_at FROM devices WHERE device_id = %s",
        sensor(1),
    )  # fmt: skip
    assert isinstance(last_seen, datetime)
    assert last_seen <= datetime.now(UTC) + timedelta(minutes=5)
    assert (state, state_at) == (None, None)
    assert shown.json()["last_batch_at"] is not None
    skew = TypeAdapter(timedelta).validate_python(shown.json()["clock_skew"])
    second = timedelta(seconds=1)  # the duration travels as JSON
    assert ahead - after - second <= skew <= ahead - before + second  # sent_at - cloud receipt
    assert TypeAdapter(timedelta).validate_python(device.json()["clock_skew"]) == skew


async def test_a_count_beyond_int4_is_refused_before_the_copy(timescale_url: str) -> None:
    gateway = await create_gateway(timescale_url, "gw-rfid")
    t = NOW - timedelta(minutes=5)
    good = TagRead(reader_id="r1", antenna=1, epc="3034F87A3C000000000003E8", first_seen=t,
                   last_seen=t, count=3, received_at=t)  # fmt: skip
    wrapped = TagRead.model_construct(**{**good.__dict__, "count": 2**32 + 5})
    batch = Batch.model_construct(
        schema_version=1, gateway_id="gw-rfid", boot_id=uuid4(), sent_at=t,
        records=[Sequenced(seq=1, record=good), Sequenced.model_construct(seq=2, record=wrapped)],
    )  # fmt: skip
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        with pytest.raises(InvalidBatchError) as refused:
            await store_batch(conn, batch)
    assert refused.value.detail == [
        {"loc": ["records", 1, "record", "tag_read"], "seq": 2, "type": "value_error",
         "msg": "read_count: 4294967301 does not fit int4"},
    ]  # fmt: skip
    assert await count(timescale_url, "tag_reads") == 0
    # over HTTP the contract itself refuses it, naming the record for the edge to dead-letter
    raw = json.loads(batch.model_dump_json(warnings=False))
    raw["records"][1]["record"]["count"] = 2**31
    async with app_client(timescale_url) as client:
        answer = await client.post(
            "/v1/batches", content=gz_json(raw),
            headers={**gateway.headers, "Content-Encoding": "gzip"},
        )  # fmt: skip
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][:2] == ["records", 1]
    assert await count(timescale_url, "tag_reads") == 0


def gz_json(value: object) -> bytes:
    return gzip.compress(json.dumps(value).encode())


async def test_a_passage_stamped_ahead_of_the_cloud_is_not_received(timescale_url: str) -> None:
    url = timescale_url
    sites = await seed_two_sites(url, NOW - timedelta(hours=3))
    gw = sites.gateways[2]
    ahead = pallet_at(dock(2), NOW + timedelta(days=1))
    on_time = pallet_at(dock(2), NOW - timedelta(minutes=1))
    async with app_client(url) as client:
        for passage in (ahead, on_time):
            sent = await post(client, gw, batch(gw, [passage]))
            assert sent.status_code == 200, sent.text
        await process(url)
    [(outcome, summary), (second, _)] = await rows(
        url, "SELECT outcome, summary FROM receipts ORDER BY receipt_id"
    )
    assert outcome == "refused"
    assert isinstance(summary, dict)
    assert "ahead of the cloud's receipt" in summary["error"]
    assert second == "complete"  # the same pallet on time is received, once
    assert await count(url, "ledger_entries", "movement = 'receive' AND quantity = 40") == 1
