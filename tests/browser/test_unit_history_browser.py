"""A unit's history page in headless Chromium: reached from the unit's card, uPlot draws on a
canvas under the dashboard's CSP without a console error, the limits are labelled, a drag
zooms in (new data for the new range), the range buttons switch to rollups, and the CSV
downloaded is what the readings API answers for the shown range."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import BROWSER_MARKS, SCREENSHOTS, console_problems, sign_in
from tests.support.cloud_processes import CloudProcess
from tests.support.coldchain_seed import DOCK, FRIDGE_A
from tests.support.web_dashboard import Seeded, seeded_site

UPLOT = Path(__file__).resolve().parents[2] / "cloud/web/vendor/node_modules/uplot/dist"

pytestmark = BROWSER_MARKS


@pytest.fixture
async def seeded(timescale_url: str) -> AsyncIterator[Seeded]:
    assert (UPLOT / "uPlot.iife.min.js").exists(), "uPlot is not installed: run make web-deps"
    async with seeded_site(timescale_url) as s:
        yield s


async def test_unit_history_chart(
    cloud: CloudProcess, browser: Browser, seeded: Seeded, timescale_url: str
) -> None:
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        await conn.execute(
            "INSERT INTO alarm_suppressions (location_id, kind, starts_at, ends_at, reason,"
            " created_by) VALUES (%s, 'maintenance', %s, %s, 'defrost check', 'tech')",
            (FRIDGE_A, seeded.start, seeded.start + timedelta(minutes=15)),
        )
        await conn.execute("UPDATE sites SET timezone = 'Europe/Paris'")
        await conn.commit()
    page = await browser.new_page(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    problems = console_problems(page)
    base = cloud.base_url
    await sign_in(page, base, seeded.tokens["viewer"])
    await page.locator(f'[data-location="{FRIDGE_A}"] h4 a').click()
    await expect(page).to_have_url(f"{base}/ui/units/{FRIDGE_A}")

    section = page.locator("section.unit-history")
    await expect(section).to_have_attribute("data-loaded", "1")
    await expect(section).to_have_attribute("data-resolution", "raw")
    canvas = section.locator(".chart-box canvas")
    await expect(canvas).to_be_visible()
    await expect(section.locator("[data-limit=action-high]")).to_have_text("action high 8.0 °C")
    await expect(section.locator("[data-limit=alert-low]")).to_have_text("alert low 3.0 °C")
    await expect(section.locator("[data-stat=max]")).to_have_text("12.0 °C")
    await expect(section.locator("[data-stat=min]")).to_have_text("5.0 °C")
    # times in the site's zone: the range shown ends now, as a Paris clock reads it
    await expect(section.locator(".shown")).to_contain_text("(Europe/Paris)")
    shown = await section.locator(".shown").text_content()
    assert shown is not None
    paris_zone = ZoneInfo("Europe/Paris")
    until = datetime.strptime(shown.split(" – ")[1][:16], "%d/%m/%Y %H:%M").replace(
        tzinfo=paris_zone
    )
    paris = datetime.now(paris_zone)
    assert abs(until - paris) < timedelta(minutes=3), (shown, paris)
    note = section.locator("ol.annotations li[data-kind=maintenance]")
    await expect(note).to_contain_text("defrost check, by tech")
    await page.screenshot(path=str(SCREENSHOTS / "unit-history.png"), full_page=True)

    # the CSV of the shown range is the readings API's answer for it
    async with page.expect_download() as info:
        await section.locator("a.csv").click()
    download = await info.value
    text = (await download.path()).read_text("utf-8")
    href = await section.locator("a.csv").get_attribute("href")
    assert href is not None
    query = parse_qs(urlsplit(href).query)
    async with httpx.AsyncClient(base_url=base) as client:
        api = await client.get(
            f"/v1/locations/{FRIDGE_A}/readings",
            params={"start": query["start"][0], "end": query["end"][0]},
            headers={"Authorization": f"Bearer {seeded.tokens['viewer']}"},
        )
    assert api.status_code == 200
    expected = [(datetime.fromisoformat(r["time"]), s["sensor_id"], r["value"])
                for s in api.json()["series"] for r in s["readings"]]  # fmt: skip
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert header == ["time", "sensor_id", "value_degC"]
    assert [(datetime.fromisoformat(t), s, float(v)) for t, s, v in rows] == expected
    assert len(rows) == 100

    # drag across the right half: the chart asks for that range only
    box = await section.locator(".u-over").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    await page.mouse.move(box["x"] + box["width"] * 0.90, y)
    await page.mouse.down()
    await page.mouse.move(box["x"] + box["width"] * 0.99, y, steps=5)
    await page.mouse.up()
    await expect(section).to_have_attribute("data-loaded", "2")
    zoomed = await section.locator("a.csv").get_attribute("href")
    assert zoomed != href

    await section.locator("button[data-span='2592000']").click()  # 30 days: hourly rollups
    await expect(section).to_have_attribute("data-resolution", "hourly")
    await section.locator("button[data-span='31536000']").click()  # a year: daily rollups
    await expect(section).to_have_attribute("data-resolution", "daily")
    await expect(canvas).to_be_visible()

    # a place without a sensor: an empty chart with its figures at "—", no script error
    await page.goto(f"{base}/ui/units/{DOCK}")
    empty = page.locator("section.unit-history")
    await expect(empty).to_have_attribute("data-loaded", "1")
    await expect(empty.locator("[data-stat=max]")).to_have_text("—")
    await expect(empty.locator("[data-stat=samples]")).to_have_text("0")

    await _lot_chart(page, base, seeded)
    await page.close()
    assert problems == []


async def _lot_chart(page: Page, base: str, seeded: Seeded) -> None:
    """The lot exposure chart: canvas, limits, the stay's location, figures, and a CSV of the
    shown range that is the exposure API's trace (the last, still growing, bucket aside)."""
    lot = seeded.site.lots["a1"]
    await page.goto(f"{base}/ui/lots/{lot}")
    holder = page.locator(".lot-exposure")
    await expect(holder).to_have_attribute("data-loaded", re.compile(r"^[1-9]"))
    await expect(holder.locator("canvas")).to_be_visible()
    await expect(holder.locator("[data-limit=action-high]")).to_have_text("action high 8.0 °C")
    await expect(holder.locator("[data-stat=max]")).to_have_text("12.0 °C")
    async with page.expect_download() as info:
        await holder.locator("a.csv").click()
    text = (await (await info.value).path()).read_text("utf-8")
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert header[:2] == ["bucket_start", "location_id"]
    async with httpx.AsyncClient(base_url=base) as client:
        api = await client.get(
            f"/v1/lots/{lot}/exposure",
            headers={"Authorization": f"Bearer {seeded.tokens['viewer']}"},
        )
    assert api.status_code == 200, api.text
    trace = [b for b in api.json()["trace"] if b["mean"] is not None]
    assert len(rows) == len(trace) >= 2
    assert {r[1] for r in rows} == {FRIDGE_A}
    for row, b in list(zip(rows, trace, strict=True))[:-1]:
        assert datetime.fromisoformat(row[0]) == datetime.fromisoformat(b["start"])
        got = [float(v) for v in row[3:]]
        assert got == pytest.approx([b["min"], b["mean"], b["max"]], abs=1e-3)
