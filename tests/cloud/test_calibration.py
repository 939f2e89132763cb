"""Sensor calibration against the real database: records through the API (QA or admin,
audited, append-only), the status of every sensor, the alarm before and after the due date
(raised once per record), and an overdue sensor's readings flagged in the unit record."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from cloud.calibration.due import check_calibrations
from tests.support.cloud_ingest import app_client
from tests.support.coldchain_seed import FRIDGE_A, FRIDGE_B, SENSOR
from tests.support.web_dashboard import Seeded, seeded_site

pytestmark = pytest.mark.integration
LEAD = timedelta(days=14)


@pytest.fixture
async def seeded(timescale_url: str) -> AsyncIterator[Seeded]:
    async with seeded_site(timescale_url) as s:
        yield s


@pytest.fixture
async def client(timescale_url: str, seeded: Seeded) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(timescale_url) as c:
        yield c


def auth(seeded: Seeded, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {seeded.tokens[role]}"}


async def record(
    client: httpx.AsyncClient, seeded: Seeded, sensor: str, **fields: Any
) -> httpx.Response:
    return await client.post(f"/v1/sensors/{sensor}/calibrations", json=fields,
                             headers=auth(seeded, "qa"))  # fmt: skip


def days(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


async def test_records_are_audited_and_give_each_sensor_a_status(
    client: httpx.AsyncClient, seeded: Seeded, timescale_url: str
) -> None:
    a, b = SENSOR[FRIDGE_A], SENSOR[FRIDGE_B]
    made = await record(client, seeded, a, calibrated_on=days(-370), certificate_ref="C-1",
                        result="pass", offset_c=0.12, next_due=days(-5))  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["recorded_by"] == "qa"
    made = await record(client, seeded, b, calibrated_on=days(-300), certificate_ref="C-2",
                        result="adjusted", next_due=days(10), note="offset corrected")  # fmt: skip
    assert made.status_code == 201, made.text
    listed = await client.get(f"/v1/sensors/{a}/calibrations", headers=auth(seeded, "viewer"))
    assert [c["certificate_ref"] for c in listed.json()] == ["C-1"]
    answer = await client.get("/v1/calibrations", headers=auth(seeded, "viewer"))
    state = {s["sensor_id"]: (s["state"], s["days_left"]) for s in answer.json()}
    assert state[a] == ("overdue", -5)
    assert state[b] == ("due_soon", 10)
    assert {st for st, _ in state.values()} >= {"unknown"}  # the room's sensor has no record
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute(
            "SELECT actor, detail->>'certificate_ref' FROM audit_log"
            " WHERE action = 'calibration.record' ORDER BY audit_id"
        )
        assert await cur.fetchall() == [("qa", "C-1"), ("qa", "C-2")]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute("DELETE FROM sensor_calibrations")


async def test_bad_records_are_refused(client: httpx.AsyncClient, seeded: Seeded) -> None:
    sensor = SENSOR[FRIDGE_A]
    good = {"calibrated_on": days(-1), "certificate_ref": "C", "result": "pass",
            "next_due": days(300)}  # fmt: skip
    viewer = await client.post(f"/v1/sensors/{sensor}/calibrations", json=good,
                               headers=auth(seeded, "viewer"))  # fmt: skip
    assert viewer.status_code == 403
    assert (await record(client, seeded, "no-such-sensor", **good)).status_code == 404
    for bad in ({"next_due": days(-2)}, {"calibrated_on": days(3), "next_due": days(30)},
                {"result": "maybe"}, {"offset_c": 1e9}, {"certificate_ref": ""},
                {"next_due": "9999-12-31"}, {"calibrated_on": "0001-01-01"}):  # fmt: skip
        answer = await record(client, seeded, sensor, **{**good, **bad})
        assert answer.status_code == 422, (bad, answer.text)
    listed = await client.get(f"/v1/sensors/{sensor}/calibrations", headers=auth(seeded, "qa"))
    assert listed.json() == []


async def test_alarm_before_and_after_the_due_date_once_per_record(
    client: httpx.AsyncClient, seeded: Seeded, timescale_url: str
) -> None:
    a, b = SENSOR[FRIDGE_A], SENSOR[FRIDGE_B]
    await record(client, seeded, a, calibrated_on=days(-370), certificate_ref="C-1",
                 result="pass", next_due=days(-1))  # fmt: skip
    await record(client, seeded, b, calibrated_on=days(-300), certificate_ref="C-2",
                 result="pass", next_due=days(20))  # fmt: skip
    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        assert await check_calibrations(conn, now, lead=LEAD) == {"calibration_overdue": 1}
        assert await check_calibrations(conn, now, lead=LEAD) == {}
        # 20 days out is beyond a 14-day lead, within a 30-day one
        later = await check_calibrations(conn, now, lead=timedelta(days=30))
        assert later == {"calibration_due": 1}
        cur = await conn.execute(
            "SELECT kind, sensor_id, location_id FROM alerts WHERE kind LIKE 'calibration%%'"
            " ORDER BY kind"
        )
        assert await cur.fetchall() == [("calibration_due", b, FRIDGE_B),
                                        ("calibration_overdue", a, FRIDGE_A)]  # fmt: skip
    # a new calibration record (a new due date) ends it: nothing more is raised
    await record(client, seeded, a, calibrated_on=days(0), certificate_ref="C-3",
                 result="pass", next_due=days(365))  # fmt: skip
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        assert await check_calibrations(conn, now, lead=timedelta(days=30)) == {}


async def test_an_overdue_sensor_is_flagged_in_the_unit_record(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    sensor = SENSOR[FRIDGE_A]
    await record(client, seeded, sensor, calibrated_on=days(-400), certificate_ref="C-1",
                 result="pass", next_due=days(-3))  # fmt: skip
    span = seeded.span()
    made = await client.post("/v1/reports/unit", headers=auth(seeded, "viewer"),
                             json={"location_id": FRIDGE_A, "format": "csv", **span})  # fmt: skip
    assert made.status_code == 201, made.text
    body = await client.get(made.json()["content_url"], headers=auth(seeded, "viewer"))
    rows = list(csv.DictReader(io.StringIO(body.text)))
    (flag,) = [r for r in rows if r["record"] == "calibration"]
    assert (flag["sensor_id"], flag["kind"]) == (sensor, "overdue")
    assert flag["end"] == span["end"].replace("+00:00", "Z")
    assert date.fromisoformat(days(-2)) <= datetime.fromisoformat(flag["day_or_start"]).date()
