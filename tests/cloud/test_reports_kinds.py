"""Every other report from the seeded scenario (fridge A warms to 12 °C: an action-level
excursion quarantining lots a1 and a2; an operator acknowledges with a comment; QA releases
lot a1 with an e-signature): the excursion report, the lot certificate, the monthly MKT and
the calibration status, each as PDF (opened, pages and figures checked) and as CSV (figures
compared with the API's answers)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from pydantic import TypeAdapter
from pypdf import PdfReader

from cloud.jobs.rollups import refresh_rollups
from tests.support.cloud_ingest import app_client
from tests.support.coldchain_seed import FRIDGE_A, SENSOR, SITE, readings
from tests.support.people import give_password, signature
from tests.support.web_dashboard import Seeded, seeded_site

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Scenario:
    seeded: Seeded
    client: httpx.AsyncClient
    excursion: dict[str, Any]


def auth(seeded: Seeded, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {seeded.tokens[role]}"}


@pytest.fixture
async def scenario(timescale_url: str) -> AsyncIterator[Scenario]:
    async with seeded_site(timescale_url) as seeded, app_client(timescale_url) as client:
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            await refresh_rollups(conn, datetime.now(UTC), timedelta(0))
        login = await client.post("/ui/login", data={"token": seeded.tokens["viewer"]})
        assert login.status_code == 303  # /ui/history, the chart's data, is the dashboard's
        client.headers.update(auth(seeded, "viewer"))
        found = (await client.get("/v1/excursions", params={"location_id": FRIDGE_A})).json()
        (excursion,) = [x for x in found if x["level"] == "action"]
        alerts = (await client.get("/v1/alerts", params={"location_id": FRIDGE_A})).json()
        raised = [a for a in alerts if a.get("excursion_id") == excursion["excursion_id"]]
        ack = await client.post(f"/v1/alerts/{raised[0]['alert_id']}/acknowledge",
                                json={"note": "door found ajar, closed"},
                                headers=auth(seeded, "operator"))  # fmt: skip
        assert ack.status_code == 200, ack.text
        await give_password(timescale_url, "qa")
        release = {"decision": "release", "reason": "stability data reviewed",
                   "signature": signature("qa", "released")}  # fmt: skip
        url = f"/v1/lots/{seeded.site.lots['a1']}/disposition"
        unconfirmed = await client.post(url, headers=auth(seeded, "qa"), json=release)
        assert unconfirmed.status_code == 409  # the excursion is still open
        assert unconfirmed.json()["detail"]["excursions"] == [excursion["excursion_id"]]
        released = await client.post(
            url, headers=auth(seeded, "qa"), json=release | {"confirm_open_excursion": True}
        )
        assert released.status_code == 200, released.text
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            cur = await conn.execute(
                "SELECT actor, detail->'excursions' FROM audit_log WHERE action = %s",
                ("release_during_open_excursion",),
            )
            assert await cur.fetchall() == [("qa", [excursion["excursion_id"]])]
        yield Scenario(seeded, client, excursion)


async def make(client: httpx.AsyncClient, kind: str, **body: Any) -> tuple[dict[str, Any], bytes]:
    made = await client.post(f"/v1/reports/{kind}", json=body)
    assert made.status_code == 201, made.text
    record: dict[str, Any] = made.json()
    content = (await client.get(record["content_url"])).content
    return record, content


def pdf_pages(content: bytes) -> list[str]:
    assert content.startswith(b"%PDF-")
    return [p.extract_text() for p in PdfReader(io.BytesIO(content)).pages]


def csv_rows(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode())))


async def test_excursion_report(scenario: Scenario) -> None:
    client, x = scenario.client, scenario.excursion
    x = (await client.get(f"/v1/excursions/{x['excursion_id']}")).json()
    _, pdf = await make(client, "excursion", excursion_id=x["excursion_id"])
    pages = pdf_pages(pdf)
    assert len(pages) >= 2  # facts and chart; timeline and the rest
    assert f"Excursion report #{x['excursion_id']}" in pages[0]
    assert f"{x['peak_value']:.2f} °C" in pages[0]
    rest = "\n".join(pages[1:])
    assert "door found ajar, closed" in rest
    assert "Not closed" in rest
    lot_signatures = (
        await client.get(
            "/v1/signatures", params={"subject": f"lot:{scenario.seeded.site.lots['a1']}"}
        )
    ).json()
    (signed,) = lot_signatures
    assert signed["manifestation"].split(",")[0] in rest.replace("\n", " ")
    _, body = await make(client, "excursion", excursion_id=x["excursion_id"], format="csv")
    rows = csv_rows(body)
    lots = {int(r["text"].split()[0]) for r in rows if r["record"] == "lot"}
    assert lots == {lot["lot_id"] for lot in x["lots"]}
    assert len([r for r in rows if r["record"] == "signature"]) == 1
    events = [r["text"] for r in rows if r["record"] == "event"]
    assert events[0] == f"{x['kind']} excursion started"
    assert any(e.startswith("alarm acknowledged by operator") for e in events)


async def test_lot_certificate(scenario: Scenario) -> None:
    client, lot = scenario.client, scenario.seeded.site.lots["a2"]
    _, pdf = await make(client, "lot", lot_id=lot)
    api = (await client.get(f"/v1/lots/{lot}/exposure")).json()
    pages = pdf_pages(pdf)
    assert "Cold-chain certificate" in pages[0]
    assert api["lot_number"] in pages[0]
    text = "\n".join(pages)
    assert "Excursions" in text
    assert "Stays" in text
    _, body = await make(client, "lot", lot_id=lot, format="csv")
    (row,) = csv_rows(body)
    assert row["status"] == api["status"] == "quarantined"
    assert int(row["excursions"]) == len(api["excursions"]) >= 1
    assert int(row["stays"]) == len(api["stays"])
    # made a moment apart: the figures move only by that moment
    assert float(row["mkt_degC"]) == pytest.approx(api["mkt"], abs=0.05)
    out = timedelta(seconds=float(row["time_out_of_range_s"]))
    assert abs(out - _duration(api["time_out_of_range"])) < timedelta(minutes=2)
    assert float(row["stability_budget_s"]) == _duration(api["stability_budget"]).total_seconds()
    assert (await client.post("/v1/reports/lot", json={"lot_id": 999999})).status_code == 422


def _duration(iso: str) -> timedelta:
    """pydantic's ISO 8601 duration (``PT1H2M3S`` / ``P1DT...``) as a timedelta."""
    return TypeAdapter(timedelta).validate_python(iso)


async def test_monthly_mkt(scenario: Scenario) -> None:
    client = scenario.client
    now = datetime.now(UTC)
    month = now.astimezone(ZoneInfo("UTC")).strftime("%Y-%m")
    _, body = await make(client, "mkt", site_id=SITE, month=month, format="csv")
    rows = {r["location_id"]: r for r in csv_rows(body)}
    assert FRIDGE_A in rows
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for location, row in rows.items():
        chart = (await client.get("/ui/history", params={
            "location": location, "start": start.isoformat(),
            "end": (now + timedelta(seconds=1)).isoformat()})).json()  # fmt: skip
        stats = chart["stats"]
        assert int(row["samples"]) == stats["samples"]
        if stats["samples"]:
            assert float(row["mkt_degC"]) == pytest.approx(stats["mkt"], abs=1e-3)
            assert float(row["max_degC"]) == pytest.approx(stats["max"], abs=1e-3)
    # 100 minutes of data, less than the 24 h window: the worst window is the month's MKT
    assert rows[FRIDGE_A]["worst_window_mkt_degC"] == rows[FRIDGE_A]["mkt_degC"]
    _, pdf = await make(client, "mkt", site_id=SITE, month=month)
    pages = pdf_pages(pdf)
    assert "Monthly MKT per storage area" in pages[0]
    assert f"{float(rows[FRIDGE_A]['mkt_degC']):.2f}" in pages[0]
    for month in ("2999-01", "0000-01", "9999-12", "2026-13"):
        answer = await client.post("/v1/reports/mkt", json={"site_id": SITE, "month": month})
        assert answer.status_code == 422, month


async def test_calibration_status_report(scenario: Scenario) -> None:
    client, seeded = scenario.client, scenario.seeded
    today = datetime.now(UTC).date()
    made = await client.post(
        f"/v1/sensors/{SENSOR[FRIDGE_A]}/calibrations", headers=auth(seeded, "qa"),
        json={"calibrated_on": str(today - timedelta(days=400)), "certificate_ref": "CAL-77",
              "result": "pass", "offset_c": -0.2, "next_due": str(today - timedelta(days=2))},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    api = {s["sensor_id"]: s for s in (await client.get("/v1/calibrations")).json()}
    _, body = await make(client, "calibration", format="csv")
    rows = {r["sensor_id"]: r for r in csv_rows(body)}
    assert set(rows) == set(api)
    for sensor, row in rows.items():
        assert row["state"] == api[sensor]["state"]
    assert rows[SENSOR[FRIDGE_A]]["state"] == "overdue"
    assert rows[SENSOR[FRIDGE_A]]["certificate_ref"] == "CAL-77"
    _, pdf = await make(client, "calibration")
    pages = pdf_pages(pdf)
    assert len(pages) >= 2  # the status table; the history
    assert "OVERDUE" in pages[0]
    assert "CAL-77" in pages[0]
    assert "Calibration history" in "\n".join(pages[1:])


async def test_excursion_report_of_a_closed_excursion(timescale_url: str) -> None:
    """Fridge A cools down again, QA closes the excursion with a root cause, a corrective
    action and an e-signature: the report prints them and the closing signature."""
    async with (
        seeded_site(timescale_url, ending=timedelta(minutes=40)) as seeded,
        app_client(timescale_url) as client,
    ):
        back = seeded.start + timedelta(minutes=100)
        await seeded.site.send(readings(SENSOR[FRIDGE_A], back, [5.0] * 35))
        client.headers.update(auth(seeded, "qa"))
        found = (await client.get("/v1/excursions", params={"location_id": FRIDGE_A})).json()
        (x,) = [x for x in found if x["level"] == "action"]
        assert x["ended_at"] is not None
        await give_password(timescale_url, "qa", full_name="Quinn Quality")
        closed = await client.post(f"/v1/excursions/{x['excursion_id']}/closure", json={
            "root_cause": "door_left_open", "root_cause_detail": "door not latched after delivery",
            "corrective_action": "staff_retrained", "comment": "checked stock, see lot records",
            "signature": signature("qa", "approved")})  # fmt: skip
        assert closed.status_code == 201, closed.text
        _, pdf = await make(client, "excursion", excursion_id=x["excursion_id"])
        text = " ".join(pdf_pages(pdf)).replace("\n", " ")
        assert "door_left_open: door not latched after delivery" in text
        assert "staff_retrained" in text
        assert "Not closed" not in text
        assert "Quinn Quality (qa)" in text
        _, body = await make(client, "excursion", excursion_id=x["excursion_id"], format="csv")
        events = [r["text"] for r in csv_rows(body) if r["record"] == "event"]
        assert "excursion ended" in events
        assert any(e.startswith("closed by qa: root cause door_left_open") for e in events)


async def test_unit_record_shows_the_signed_dispositions(scenario: Scenario) -> None:
    client, seeded = scenario.client, scenario.seeded
    span = seeded.span()
    _, body = await make(client, "unit", location_id=FRIDGE_A, format="csv", **span)
    lot = seeded.site.lots["a1"]
    (signed,) = (await client.get("/v1/signatures", params={"subject": f"lot:{lot}"})).json()
    rows = [r for r in csv_rows(body) if r["record"] == "signature"]
    assert [r["text"] for r in rows] == [f"lot:{lot}: {signed['manifestation']}"]
    _, pdf = await make(client, "unit", location_id=FRIDGE_A, **span)
    text = " ".join(pdf_pages(pdf)).replace("\n", " ")
    assert "Electronic signatures on dispositions" in text
    assert signed["manifestation"].split(",")[0] in text
