"""The overview (with its alarms, quarantine and receiving sections), a unit's page and a lot's
page at 390 px, a phone's width, in headless Chromium (issue 16.4): no horizontal scroll, and
every action button (acknowledge, release, reject) lies within the screen."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import BROWSER_MARKS, SCREENSHOTS, sign_in
from tests.support.cloud_processes import CloudProcess
from tests.support.coldchain_seed import FRIDGE_A
from tests.support.web_dashboard import Seeded, seeded_site

pytestmark = BROWSER_MARKS
WIDTH = 390


@pytest.fixture
async def seeded(timescale_url: str) -> AsyncIterator[Seeded]:
    async with seeded_site(timescale_url, warm=True) as s:  # an excursion, lots quarantined
        yield s


async def assert_fits(page: Page, what: str) -> None:
    await page.wait_for_load_state("networkidle")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{what}: the page is {width} px wide at {WIDTH} px"
    wide = await page.evaluate(
        f"""[...document.querySelectorAll('body *')]
            .filter(el => el.getBoundingClientRect().right > {WIDTH} + 0.5
                          && getComputedStyle(el).visibility !== 'hidden')
            .filter(el => !el.closest('.scroll-x'))
            .map(el => el.tagName + '.' + el.className).slice(0, 5)"""
    )
    assert not wide, f"{what}: beyond the screen: {wide}"
    for button in await page.locator("main button:visible").all():
        await button.scroll_into_view_if_needed()
        box = await button.bounding_box()
        assert box is not None
        label = await button.text_content()
        assert box["x"] >= 0, f"{what}: {label!r} starts off screen"
        assert box["x"] + box["width"] <= WIDTH, f"{what}: {label!r} ends off screen"


async def test_pages_fit_a_phone(cloud: CloudProcess, browser: Browser, seeded: Seeded) -> None:
    page = await browser.new_page(viewport={"width": WIDTH, "height": 844}, is_mobile=True)
    base = cloud.base_url
    await sign_in(page, base, seeded.tokens["qa"])
    await expect(page.locator('[data-state="excursion"]').first).to_be_visible(timeout=20_000)
    await expect(page.locator("#quarantine button").first).to_be_visible(timeout=20_000)
    await assert_fits(page, "overview")
    await page.screenshot(path=str(SCREENSHOTS / "mobile-overview.png"), full_page=True)
    await page.goto(f"{base}/ui/units/{FRIDGE_A}")
    await assert_fits(page, "unit page")
    await page.goto(f"{base}/ui/lots/{seeded.site.lots['a1']}")
    await assert_fits(page, "lot page")
