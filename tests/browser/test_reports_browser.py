"""Reports and calibration on the dashboard in headless Chromium: the unit page's report link
follows the range shown and downloads the archived PDF, and an overdue sensor's period is
listed on the unit chart (shaded, "C") without a console error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import BROWSER_MARKS, console_problems, sign_in
from tests.support.cloud_processes import CloudProcess
from tests.support.coldchain_seed import FRIDGE_A
from tests.support.web_dashboard import Seeded, overdue_calibration, seeded_site

pytestmark = BROWSER_MARKS


@pytest.fixture
async def seeded(timescale_url: str) -> AsyncIterator[Seeded]:
    async with seeded_site(timescale_url) as s:
        yield s


async def test_report_link_and_calibration_flag(
    cloud: CloudProcess, browser: Browser, seeded: Seeded
) -> None:
    async with httpx.AsyncClient(base_url=cloud.base_url) as api:
        await overdue_calibration(api, seeded, "C-1")
    page = await browser.new_page(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    problems = console_problems(page)
    await sign_in(page, cloud.base_url, seeded.tokens["viewer"])
    await page.goto(f"{cloud.base_url}/ui/units/{FRIDGE_A}")
    section = page.locator("section.unit-history")
    await expect(section).to_have_attribute("data-loaded", "1")
    flag = section.locator("ol.annotations li[data-kind=calibration]")
    await expect(flag).to_contain_text("calibration overdue")
    link = section.locator("a.report")
    href = await link.get_attribute("href")
    assert href is not None
    query = parse_qs(urlsplit(href).query)
    assert query["location"] == [FRIDGE_A]
    assert set(query) >= {"start", "end"}
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    content = (await download.path()).read_bytes()
    assert content.startswith(b"%PDF-")
    assert problems == []
