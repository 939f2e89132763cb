"""A gateway writes only for its own site (issue 12.1), end to end: two sites, two gateways,
HTTP ingest, the processor's default steps, the device and dead-letter APIs.

gw-1 (site 1) tries what an attacker or a misconfigured gateway would: readings of site 2's
fridge sensor at 12 °C, the status of site 2's devices, a pallet passage at site 2's dock. None
of it is judged or applied; all of it is kept as dead letters with the reason and counted, and
gw-1's own records in the same batches are stored and judged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import psycopg
import pytest

from cloud.auth.model import Role
from cloud.auth.service import add_user
from cloud.processing.processor import Processor
from cloud.processing.registry import default_steps
from cloud.storage.database import make_pool
from protocols.batch import Batch, Sequenced
from protocols.gs1.epc import encode_sscc96
from protocols.records import DeviceState, Direction, PortalPassage, Reading, Record
from tests.support.cloud_ingest import Gateway, app_client, count, create_gateway, post, status
from tests.support.coldchain_seed import FAST
from tests.support.two_sites import PALLET_2, dock, seed_two_sites, sensor

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
T0 = NOW - timedelta(hours=3)


def warm(sensor_id: str, start: datetime = T0) -> list[Reading]:
    """5 °C, then 12 °C for 40 minutes: an action-level excursion in a 2-8 °C fridge."""
    values = [5.0] * 5 + [12.0] * 40
    return [
        Reading(sensor_id=sensor_id, time=start + timedelta(minutes=i), value=v,
                received_at=start + timedelta(minutes=i))
        for i, v in enumerate(values)
    ]  # fmt: skip


def pallet_at(door: str, at: datetime) -> PortalPassage:
    return PortalPassage(
        passage_id=f"{door}/1", door_id=door, reader_id=f"{door}/reader",
        direction=Direction.INBOUND, started_at=at, ended_at=at + timedelta(seconds=5),
        epcs=(encode_sscc96(PALLET_2, 7),),
    )  # fmt: skip


def batch(gateway: Gateway, records: Sequence[Record]) -> Batch:
    return Batch(
        gateway_id=gateway.gateway_id, boot_id=uuid4(), sent_at=NOW + timedelta(seconds=90),
        records=[Sequenced(seq=i + 1, record=r) for i, r in enumerate(records)],
    )  # fmt: skip


async def process(url: str) -> None:
    async with make_pool(url, max_size=2) as pool:
        await Processor(pool, default_steps(), FAST, listen_url=url).drain()
    assert await count(url, "processor_streams", "last_error IS NOT NULL") == 0


async def rows(url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(query, params)
        return list(await cur.fetchall())


async def tokens(url: str) -> dict[Role, dict[str, str]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        made = {role: await add_user(conn, f"{role.value}-1", role) for role in Role}
        await conn.commit()
    return {role: {"Authorization": f"Bearer {t}"} for role, t in made.items()}


async def test_a_gateway_cannot_judge_receive_or_take_over_at_another_site(
    timescale_url: str,
) -> None:
    url = timescale_url
    sites = await seed_two_sites(url, T0)
    gw1, gw2 = sites.gateways[1], sites.gateways[2]
    users = await tokens(url)
    async with app_client(url) as client:
        # gw-2 reports its own sensor first, so site 2's devices row belongs to gw-2
        own = await post(client, gw2, batch(gw2, [status(sensor(2), DeviceState.ONLINE, T0)]))
        assert own.status_code == 200, own.text
        await process(url)

        # gw-1's batch: its own fridge in range, and site 2's sensor, door and device
        attack: list[Record] = [
            *warm(sensor(2)),
            status(sensor(2), DeviceState.OFFLINE, T0 + timedelta(minutes=50)),
            pallet_at(dock(2), T0 + timedelta(minutes=55)),
            *[Reading(sensor_id=sensor(1), time=T0 + timedelta(minutes=i), value=5.0,
                      received_at=T0 + timedelta(minutes=i)) for i in range(45)],
        ]  # fmt: skip
        sent = await post(client, gw1, batch(gw1, attack))
        assert sent.status_code == 200, sent.text
        assert sent.json()["stored_through"] == len(attack)  # refused records are acknowledged
        await process(url)

        # nothing of it was judged or applied at site 2
        assert await count(url, "readings", f"sensor_id = '{sensor(2)}'") == 0
        assert await count(url, "excursions") == 0
        assert await rows(url, "SELECT status FROM lots WHERE lot_id = %s", sites.lots[2]) == [
            ("available",)
        ]
        assert await count(url, "receipts") == 0
        assert await count(url, "ledger_entries", "movement = 'receive' AND quantity = 40") == 0
        assert await rows(
            url, "SELECT gateway_id, last_state FROM devices WHERE device_id = %s", sensor(2)
        ) == [("gw-2", "online")]
        # gw-1's own readings of the same batch were stored
        assert await count(url, "readings", f"sensor_id = '{sensor(1)}'") == 45

        # kept as dead letters made by the cloud, with the reason; counted per gateway
        refused = await rows(
            url,
            "SELECT refusal, record_kind, count(*) FROM dead_letters WHERE gateway_id = 'gw-1'"
            " GROUP BY 1, 2 ORDER BY 2",
        )
        assert refused == [
            ("foreign_site", "device_status", 1),
            ("foreign_site", "portal_passage", 1),
            ("foreign_site", "reading", 45),
        ]
        listed = await client.get("/v1/gateways/gw-1", headers=users[Role.VIEWER])
        assert listed.status_code == 200, listed.text
        assert listed.json()["site_id"] == "site-1"
        assert listed.json()["refusals"] == {"foreign_site": 47}
        pages: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(pages) < 10:  # one batch's 47 letters share a stored_at: keyset paging
            params: dict[str, str | int] = {"gateway_id": "gw-1", "made_by": "cloud", "limit": 10}
            if cursor:
                params["cursor"] = cursor
            page = await client.get("/v1/dead-letters", params=params, headers=users[Role.ADMIN])
            assert page.status_code == 200, page.text
            pages.append(page.json())
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        letters = [d for p in pages for d in p["dead_letters"]]
        assert [len(p["dead_letters"]) for p in pages] == [10, 10, 10, 10, 7]
        assert len({(d["boot_id"], d["seq"]) for d in letters}) == 47
        passage = next(d for d in letters if d["record_kind"] == "portal_passage")
        assert "site-2" in passage["reason"]
        assert "site-1" in passage["reason"]
        assert json.loads(passage["text"])["door_id"] == dock(2)
        viewer = await client.get("/v1/dead-letters", headers=users[Role.VIEWER])
        assert viewer.status_code == 403
        junk = await client.get(
            "/v1/dead-letters", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=users[Role.ADMIN]
        )
        assert junk.status_code == 422

        # the same records from site 2's own gateway are judged and applied
        again: list[Record] = [*warm(sensor(2)), pallet_at(dock(2), T0 + timedelta(hours=1))]
        legit = await post(client, gw2, batch(gw2, again))
        assert legit.status_code == 200, legit.text
        await process(url)
    assert await rows(url, "SELECT level FROM excursions WHERE sensor_id = %s", sensor(2)) == [
        ("action",)
    ]
    assert await rows(url, "SELECT status FROM lots WHERE lot_id = %s", sites.lots[2]) == [
        ("quarantined",)
    ]
    assert await count(url, "ledger_entries", "movement = 'receive' AND quantity = 40") == 1
    assert await count(url, "dead_letters", "gateway_id = 'gw-2'") == 0


async def test_unmounted_devices_belong_to_the_site_that_reported_them_first(
    timescale_url: str,
) -> None:
    url = timescale_url
    sites = await seed_two_sites(url, T0)
    gw1, gw2 = sites.gateways[1], sites.gateways[2]
    gw3 = await create_gateway(url, "gw-3", site="site-2")  # a second gateway at site 2
    nowhere = await create_gateway(url, "gw-0")  # registered before sites were required
    logger = "loose-logger/t"
    reading = warm(logger)[:3]
    async with app_client(url) as client:
        first = await post(client, gw2, batch(gw2, reading))
        assert first.status_code == 200, first.text
        await process(url)  # gw-2 becomes the logger's first reporter
        for gateway in (gw1, gw3, nowhere):
            records: list[Record] = [*reading, status(logger, DeviceState.DEGRADED, T0)]
            answer = await post(client, gateway, batch(gateway, records))
            assert answer.status_code == 200, answer.text
        # the site-less gateway may still report what is bound to no site
        free = await post(client, nowhere, batch(nowhere, [status("gw-0", DeviceState.ONLINE, T0)]))
        assert free.status_code == 200, free.text
        await process(url)
    kept = await rows(
        url, "SELECT gateway_id, refusal, record_kind, count(*) FROM dead_letters"
        " GROUP BY 1, 2, 3 ORDER BY 1, 3",
    )  # fmt: skip
    assert kept == [
        # a status of a device another gateway owns is that gateway's to report
        ("gw-0", "foreign_device", "device_status", 1),
        ("gw-0", "no_site", "reading", 3),
        ("gw-1", "foreign_device", "device_status", 1),
        ("gw-1", "foreign_site", "reading", 3),
        # same site: two gateways may hear one logger, but only its owner reports its state
        ("gw-3", "foreign_device", "device_status", 1),
    ]
    assert await count(url, "readings", f"sensor_id = '{logger}' AND gateway_id = 'gw-3'") == 3
    assert await rows(
        url, "SELECT gateway_id, last_state FROM devices WHERE device_id = %s", logger
    ) == [("gw-2", None)]
    assert await rows(url, "SELECT last_state FROM devices WHERE device_id = 'gw-0'") == [
        ("online",)
    ]


async def test_no_gateway_reports_another_gateways_status(timescale_url: str) -> None:
    url = timescale_url
    sites = await seed_two_sites(url, T0)
    gw1 = sites.gateways[1]
    async with app_client(url) as client:
        sent = await post(client, gw1, batch(gw1, [status("gw-2", DeviceState.OFFLINE, T0)]))
        assert sent.status_code == 200, sent.text
        await process(url)
    assert await rows(url, "SELECT refusal FROM dead_letters") == [("foreign_device",)]
    assert await count(url, "devices", "device_id = 'gw-2'") == 0


def coldtrace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coldtrace", *args], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


async def test_a_gateway_without_a_site_is_registered_to_one_by_the_cli(
    timescale_url: str,
) -> None:
    url = timescale_url
    await seed_two_sites(url, T0)
    add = coldtrace("cloud", "gateway", "add", "gw-old", "--database-url", url)
    assert add.returncode == 0, add.stderr
    assert "has no site" in add.stderr
    gateway = Gateway("gw-old", add.stdout.strip().splitlines()[-1])
    async with app_client(url) as client:
        before = await post(client, gateway, batch(gateway, warm(sensor(1))[:2]))
        assert before.status_code == 200, before.text
        moved = coldtrace("cloud", "gateway", "site", "gw-old", "site-1", "--reason", "dock 1",
                          "--database-url", url)  # fmt: skip
        assert moved.returncode == 0, moved.stderr
        after = await post(client, gateway, batch(gateway, warm(sensor(1))[2:4]))
        assert after.status_code == 200, after.text
    nowhere = coldtrace("cloud", "gateway", "site", "gw-old", "site-9", "--database-url", url)
    assert nowhere.returncode == 1
    assert "no site 'site-9'" in nowhere.stderr
    assert await rows(url, "SELECT refusal, count(*) FROM dead_letters GROUP BY 1") == [
        ("no_site", 2)
    ]
    assert await count(url, "readings", "gateway_id = 'gw-old'") == 2
    trail = await rows(url, "SELECT action, reason, detail->>'site_id' FROM audit_log"
                       " WHERE subject = 'gateway:gw-old' ORDER BY audit_id")  # fmt: skip
    assert trail == [
        ("gateway.add", "gateway registered", None),
        ("gateway.site", "dock 1", "site-1"),
    ]


async def test_the_mount_decides_over_a_first_report_from_another_site(
    timescale_url: str,
) -> None:
    url = timescale_url
    sites = await seed_two_sites(url, T0)
    gw1, gw2 = sites.gateways[1], sites.gateways[2]
    squatted = "new-probe/t"
    async with app_client(url) as client:
        first = await post(client, gw1, batch(gw1, warm(squatted)[:2]))
        assert first.status_code == 200, first.text
        await process(url)  # gw-1 reported it first, before anyone mounted it
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await conn.execute(
                "INSERT INTO sensors (sensor_id, location_id) VALUES (%s, 's2-fridge')", (squatted,)
            )
            await conn.commit()
        late: list[Record] = [*warm(squatted)[2:4], status(squatted, DeviceState.OFFLINE, T0)]
        stale = await post(client, gw1, batch(gw1, late))
        theirs: list[Record] = [*warm(squatted)[4:6], status(squatted, DeviceState.ONLINE, T0)]
        own = await post(client, gw2, batch(gw2, theirs))
        # ids that are another site's door or another gateway are not devices gw-1 can report
        odd = await post(client, gw1, batch(gw1, [
            status(dock(2), DeviceState.OFFLINE, T0),
            Reading(sensor_id="gw-2", time=T0, value=5.0, received_at=T0),
        ]))  # fmt: skip
        for answer in (stale, own, odd):
            assert answer.status_code == 200, answer.text
        await process(url)
    assert await rows(
        url, "SELECT gateway_id, last_state FROM devices WHERE device_id = %s", squatted
    ) == [("gw-2", "online")]
    assert await rows(
        url, "SELECT gateway_id, count(*) FROM readings WHERE sensor_id = %s GROUP BY 1 ORDER BY 1",
        squatted,
    ) == [("gw-1", 2), ("gw-2", 2)]  # fmt: skip
    assert await rows(
        url, "SELECT refusal, record_kind, count(*) FROM dead_letters WHERE gateway_id = 'gw-1'"
        " GROUP BY 1, 2 ORDER BY 1, 2",
    ) == [
        ("foreign_device", "reading", 1),
        ("foreign_site", "device_status", 2),
        ("foreign_site", "reading", 2),
    ]  # fmt: skip
