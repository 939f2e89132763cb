"""Shipment logger files and tracker readings are held to the same physics and clock as ingest
(issue 12.3: every endpoint that writes ``readings``, not only ``POST /v1/batches``).

A file or tracker post is refused whole, naming the reading, when a temperature lies outside
the physical range (one 1e308 would overflow ``avg`` in every rollup of its hour), when a time
cannot be a UTC timestamp, is older than the backlog horizon (each day of a decades-long file
would be a chunk of its own) or is stamped after the cloud's time. A tracker "via gateway"
cannot be a fixed sensor (issue 12.1), and a transfer's door events are paged (12.2).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import psycopg
import pytest

from cloud.auth.model import Role
from cloud.transfers import LoggerFileError
from cloud.transfers.logger_files import parse_generic, parse_logtag
from protocols.batch import Batch, Sequenced
from protocols.records import Reading
from tests.cloud.test_transfers_api import ORDER
from tests.support.cloud_ingest import create_gateway, post
from tests.support.ledger_api import Api, api

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.mark.parametrize(
    ("celsius", "shown"), [("1e308", "1e+308"), ("-300", "-300"), ("1001", "1001")]
)
def test_a_csv_temperature_outside_physics_refuses_the_file_by_line(
    celsius: str, shown: str
) -> None:
    doc = f"time,celsius\n2026-03-01T08:00:00Z,4\n2026-03-01T08:05:00Z,{celsius}\n"
    with pytest.raises(LoggerFileError) as refused:
        parse_generic(doc)
    assert str(refused.value) == (
        f"line 3: {shown} degC is outside the physical range -273.15..1000"
    )


def test_a_logtag_temperature_outside_physics_is_judged_in_celsius() -> None:
    head = "Serial Number,1004123456\n\nDate,Time,Temperature (°F)\n"
    with pytest.raises(LoggerFileError, match=r"line 5: 5\.5\d+e\+307 degC is outside"):
        parse_logtag(head + "03/01/2026,08:00:00,41\n03/01/2026,08:10:00,1e308\n",
                     zone=ZoneInfo("UTC"), dayfirst=False)  # fmt: skip
    # 1000 °C is 1832 °F: the limit applies after the conversion
    ok = parse_logtag(head + "03/01/2026,08:00:00,1832\n", zone=ZoneInfo("UTC"), dayfirst=False)
    assert [s.celsius for s in ok.samples] == [1000.0]


def test_times_beyond_a_utc_timestamp_are_a_line_error_not_a_crash() -> None:
    with pytest.raises(LoggerFileError, match="line 2: time '0001-01-01T00:00:00\\+05:00'"):
        parse_generic("time,celsius\n0001-01-01T00:00:00+05:00,4\n")
    with pytest.raises(LoggerFileError, match="line 2: time '9999-12-31T23:00:00-05:00'"):
        parse_generic("time,celsius\n9999-12-31T23:00:00-05:00,4\n")
    doc = "Serial Number,1\n\nDate,Time,Temperature (°C)\n01/01/0001,00:30:00,4\n"
    with pytest.raises(LoggerFileError, match="line 4: time '01/01/0001 00:30:00'"):
        parse_logtag(doc, zone=ZoneInfo("Asia/Tokyo"), dayfirst=True)


@pytest.fixture
async def shipped(timescale_url: str) -> AsyncIterator[tuple[Api, int]]:
    """Transfer TR-API in transit since two hours ago, carrying logger LOG-1 and tracker TRK-1."""
    async with api(timescale_url) as a:
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            await conn.execute("INSERT INTO sites (site_id, name) VALUES ('site-2', 'Two')")
            await conn.commit()
        c, op = a.client, a.as_(Role.OPERATOR)
        created = await c.post("/v1/transfers", json=ORDER, headers=op)
        assert created.status_code == 201, created.text
        tid = int(created.json()["transfer_id"])
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            await conn.execute(
                "UPDATE transfers SET status = 'in_transit', shipped_at = %s"
                " WHERE transfer_id = %s",
                (NOW - timedelta(hours=2), tid),
            )
            await conn.commit()
        for logger, kind in (("LOG-1", "logger"), ("TRK-1", "tracker")):
            got = await c.post(
                f"/v1/transfers/{tid}/loggers", json={"logger_id": logger, "kind": kind},
                headers=op,
            )  # fmt: skip
            assert got.status_code == 201, got.text
        yield a, tid


def csv_of(*rows: tuple[datetime, str]) -> bytes:
    return ("time,celsius\n" + "".join(f"{t.isoformat()},{v}\n" for t, v in rows)).encode()


async def stored_readings(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT count(*) FROM readings WHERE gateway_id = 'shipment'")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.integration
async def test_hostile_logger_files_and_tracker_posts_store_nothing(
    shipped: tuple[Api, int], timescale_url: str
) -> None:
    api, tid = shipped
    c, op = api.client, api.as_(Role.OPERATOR)
    text = {**op, "Content-Type": "text/plain"}
    upload = "/v1/shipment-loggers/import?format=csv&logger_id=LOG-1"
    hour = timedelta(hours=1)
    # 1970 to now, one reading a month: hundreds of daily chunks of `readings` in one request
    decades = [(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=30 * i), "5") for i in range(680)]
    files = {
        "a 1e308 among good readings": (
            csv_of((NOW - hour, "5"), (NOW - hour / 2, "1e308")),
            "line 3: 1e+308 degC is outside the physical range -273.15..1000",
        ),
        "decades of history": (
            csv_of(*decades, (NOW - hour, "5")),
            "reading at 1970-01-01T00:00:00+00:00 is older than the backlog horizon of 3650 days",
        ),
        "a reading from tomorrow": (
            csv_of((NOW - hour, "5"), (NOW + timedelta(days=1), "12")),
            "is stamped after the cloud's time",
        ),
    }
    for what, (body, message) in files.items():
        refused = await c.post(upload, content=body, headers=text)
        assert refused.status_code == 422, (what, refused.text)
        assert message in refused.json()["detail"], what
    posts = {
        "a 1e308": [{"time": (NOW - hour).isoformat(), "celsius": 1e308}],
        "tomorrow's": [
            {"time": (NOW - hour).isoformat(), "celsius": 5},
            {"time": (NOW + timedelta(days=1)).isoformat(), "celsius": 12},
        ],
        "1975's": [{"time": "1975-01-01T00:00:00Z", "celsius": 5}],
    }
    for what, readings in posts.items():
        refused = await c.post("/v1/trackers/TRK-1/readings", json=readings, headers=op)
        assert refused.status_code == 422, (what, refused.text)
    assert await stored_readings(timescale_url) == 0
    vw = api.as_(Role.VIEWER)
    transit = await c.get(f"/v1/transfers/{tid}/transit", headers=vw)
    assert transit.status_code == 200, transit.text
    assert transit.json()["action_excursions"] == 0  # tomorrow's 12 °C judged nothing

    # the same file without its bad line, and a tracker reading a minute ago, are taken
    good = await c.post(upload, content=csv_of((NOW - hour, "5"), (NOW - hour / 2, "5.5")),
                        headers=text)  # fmt: skip
    assert good.status_code == 200, good.text
    assert good.json()["stored"] == 2
    live = [{"time": (NOW - timedelta(minutes=1)).isoformat(), "celsius": 4.5}]
    taken = await c.post("/v1/trackers/TRK-1/readings", json=live, headers=op)
    assert taken.status_code == 200, taken.text
    assert await stored_readings(timescale_url) == 3


def test_a_field_over_the_csv_limit_is_a_line_error() -> None:
    doc = "time,celsius\n2026-03-01T08:00:00Z,4\n2026-03-01T08:05:00Z," + "9" * 200_000 + "\n"
    with pytest.raises(LoggerFileError, match="line 3: field larger than field limit"):
        parse_generic(doc)


@pytest.mark.integration
async def test_a_long_trip_fits_the_document_limit_and_strangers_are_not_read(
    shipped: tuple[Api, int], timescale_url: str
) -> None:
    """40 days at 5-minute intervals (11,520 readings, some 350 KB) is more than the ordinary
    256 KiB body limit; the import takes it as a document, after the role check."""
    api, _ = shipped
    c, op = api.client, api.as_(Role.OPERATOR)
    start = NOW - timedelta(days=40)
    trip = csv_of(*[(start + timedelta(minutes=5 * i), "5.0") for i in range(40 * 24 * 12)])
    assert len(trip) > 256 * 1024
    upload = "/v1/shipment-loggers/import?format=csv&logger_id=LOG-1"
    text = {"Content-Type": "text/plain"}
    anonymous = await c.post(upload, content=trip, headers=text)
    assert anonymous.status_code == 401
    viewer = await c.post(upload, content=trip, headers={**text, **api.as_(Role.VIEWER)})
    assert viewer.status_code == 403
    huge = {**text, **op, "Content-Length": str(21 * 2**20)}
    assert (await c.post(upload, content=b"time,celsius\n", headers=huge)).status_code == 413
    taken = await c.post(upload, content=trip, headers={**text, **op})
    assert taken.status_code == 200, taken.text
    assert taken.json()["stored"] == 40 * 24 * 12
    assert await stored_readings(timescale_url) == 40 * 24 * 12


@pytest.mark.integration
async def test_a_fixed_sensor_cannot_be_taken_as_a_gateway_tracker(
    shipped: tuple[Api, int], timescale_url: str
) -> None:
    """Attaching a tracker "via gateway" remounts its sensor id at the shipment's transit
    location. An operator naming site 2's fridge sensor would move it into site 1's transit:
    a mount only admins may change, and site 2's own gateway would then have its readings of
    that fridge refused as another site's. Refused; a new tracker id is still taken."""
    api, tid = shipped
    c, op = api.client, api.as_(Role.OPERATOR)
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        await conn.execute(
            "INSERT INTO locations (location_id, site_id, kind, name)"
            " VALUES ('fridge-s2', 'site-2', 'fridge', 'Fridge, site 2')"
        )
        await conn.execute(
            "INSERT INTO sensors (sensor_id, location_id) VALUES ('fridge-s2/t', 'fridge-s2')"
        )
        await conn.commit()
    gw2 = await create_gateway(timescale_url, "gw-s2", "site-2")
    loggers = f"/v1/transfers/{tid}/loggers"
    for fixed in ("fridge-s2/t", "fridge-s2/t"):  # the second try finds it still in place
        taken = await c.post(
            loggers, json={"logger_id": fixed, "kind": "tracker", "via_gateway": True}, headers=op
        )
        assert taken.status_code == 422, taken.text
        assert "is mounted at fridge-s2 (site site-2)" in taken.json()["detail"]
    new = await c.post(
        loggers, json={"logger_id": "TRK-7", "kind": "tracker", "via_gateway": True}, headers=op
    )
    assert new.status_code == 201, new.text
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute(
            "SELECT sensor_id, location_id FROM sensors WHERE sensor_id IN ('fridge-s2/t', 'TRK-7')"
            " ORDER BY 1"
        )
        assert await cur.fetchall() == [("TRK-7", "transit:TR-API"), ("fridge-s2/t", "fridge-s2")]
    # site 2's gateway still reports its fridge: stored, not refused as another site's
    at = NOW - timedelta(minutes=2)
    reading = Reading(sensor_id="fridge-s2/t", time=at, value=5.0, received_at=at)
    batch = Batch(gateway_id="gw-s2", boot_id=uuid4(), sent_at=NOW,
                  records=[Sequenced(seq=1, record=reading)])  # fmt: skip
    sent = await post(c, gw2, batch)
    assert sent.status_code == 200, sent.text
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM readings WHERE sensor_id = 'fridge-s2/t'),"
            " (SELECT count(*) FROM dead_letters)"
        )
        assert await cur.fetchone() == (1, 0)


@pytest.mark.integration
async def test_door_events_are_paged(shipped: tuple[Api, int], timescale_url: str) -> None:
    """Every passage of an outbound door adds events to the transfer: the list is paged by
    event id (issue 12.2: no read answers "all of them" when gateways make them)."""
    api, tid = shipped
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        for i in range(25):
            await conn.execute(
                "INSERT INTO transfer_door_events (transfer_id, door_id, passage_id, at, item,"
                " outcome, reason) VALUES (%s, 'dock-1', %s, %s, %s, %s, %s)",
                (tid, f"p{i}", NOW, f"item {i}", "blocked" if i % 5 == 0 else "shipped",
                 "not ordered" if i % 5 == 0 else None),
            )  # fmt: skip
        await conn.commit()
    c, vw = api.client, api.as_(Role.VIEWER)
    url = f"/v1/transfers/{tid}/door-events"
    pages: list[list[dict[str, object]]] = []
    after = 0
    while len(pages) < 5:
        page = await c.get(url, params={"limit": 10, "after": after}, headers=vw)
        assert page.status_code == 200, page.text
        pages.append(page.json())
        if len(pages[-1]) < 10:
            break
        after = int(str(pages[-1][-1]["event_id"]))
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [e["item"] for p in pages for e in p] == [f"item {i}" for i in range(25)]
    blocked = await c.get(url, params={"outcome": "blocked"}, headers=vw)
    assert [e["reason"] for e in blocked.json()] == ["not ordered"] * 5
    assert len((await c.get(url, headers=vw)).json()) == 25  # the default page holds them
    assert (await c.get(url, params={"limit": 10_001}, headers=vw)).status_code == 422
