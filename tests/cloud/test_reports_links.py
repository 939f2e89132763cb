"""The dashboard's side of reports and calibration: the unit page links its temperature
record, the links make archived reports for the signed-in user, and the unit chart's data
flag the readings of a sensor whose calibration is overdue."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.cloud_ingest import app_client
from tests.support.coldchain_seed import FRIDGE_A
from tests.support.web_dashboard import Seeded, overdue_calibration, seeded_site

pytestmark = pytest.mark.integration


@pytest.fixture
async def seeded(timescale_url: str) -> AsyncIterator[Seeded]:
    async with seeded_site(timescale_url) as s:
        yield s


@pytest.fixture
async def client(timescale_url: str, seeded: Seeded) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(timescale_url) as c:
        login = await c.post("/ui/login", data={"token": seeded.tokens["viewer"]})
        assert login.status_code == 303
        yield c


async def test_links_make_archived_reports_for_the_session_user(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    overview = (await client.get("/ui")).text
    assert "href='/ui/reports/excursion/" in overview
    page = await client.get(f"/ui/units/{FRIDGE_A}")
    assert f"data-report='/ui/reports/unit?location={FRIDGE_A}'" in page.text
    answer = await client.get("/ui/reports/unit", params={"location": FRIDGE_A, **seeded.span()})
    assert answer.status_code == 200, answer.text
    assert answer.content.startswith(b"%PDF-")
    lot = seeded.site.lots["a1"]
    assert f"href='/ui/reports/lot/{lot}'" in (await client.get(f"/ui/lots/{lot}")).text
    cert = await client.get(f"/ui/reports/lot/{lot}", params={"format": "csv"})
    assert cert.status_code == 200, cert.text
    assert cert.text.splitlines()[1].startswith(f"{lot},")
    viewer = {"Authorization": f"Bearer {seeded.tokens['viewer']}"}
    listed = (await client.get("/v1/reports", headers=viewer)).json()
    assert [(r["kind"], r["created_by"]) for r in listed] == [("lot", "viewer"),
                                                              ("unit", "viewer")]  # fmt: skip
    again = await client.get(listed[1]["content_url"], headers=viewer)
    assert again.content == answer.content
    assert (await client.get("/ui/reports/lot/999999")).status_code == 404
    client.cookies.clear()
    assert (await client.get(f"/ui/reports/lot/{lot}")).status_code == 401


async def test_the_chart_flags_an_overdue_sensor(client: httpx.AsyncClient, seeded: Seeded) -> None:
    await overdue_calibration(client, seeded, "C-9")
    body = (await client.get("/ui/history", params={"location": FRIDGE_A, **seeded.span()})).json()
    (flag,) = [n for n in body["annotations"] if n["kind"] == "calibration"]
    assert flag["end"] is not None
    assert "calibration overdue" in flag["text"]
    other = await client.get("/ui/history", params={"location": "cc-room", **seeded.span()})
    assert [n for n in other.json()["annotations"] if n["kind"] == "calibration"] == []
