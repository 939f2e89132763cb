"""Closing an ended excursion from the unit page in headless Chromium: QA picks the root cause
and corrective action, a refused signature is said in words, a valid one closes it and the page
shows the closure with its signature; no console errors besides the refusal's 401."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import BROWSER_MARKS, console_problems, sign_in
from tests.support.cloud_processes import CloudProcess
from tests.support.coldchain_seed import FRIDGE_B
from tests.support.people import PASSWORD, give_password
from tests.support.web_dashboard import Seeded, seeded_site

pytestmark = BROWSER_MARKS


@pytest.fixture
async def seeded(timescale_url: str) -> AsyncIterator[Seeded]:
    async with seeded_site(timescale_url, warm=False) as s:
        await give_password(timescale_url, "qa", full_name="Quinn Quality")
        yield s


async def test_qa_closes_an_ended_excursion_with_a_signature(
    cloud: CloudProcess, browser: Browser, seeded: Seeded
) -> None:
    [(excursion_id,)] = await seeded.site.rows(
        "INSERT INTO excursions (location_id, sensor_id, kind, level, started_at, ended_at)"
        " VALUES (%s, 's', 'high', 'action', now() - interval '80 minutes',"
        " now() - interval '1 hour') RETURNING excursion_id",
        FRIDGE_B,
    )
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    problems = console_problems(page)
    await sign_in(page, cloud.base_url, seeded.tokens["qa"])
    await page.goto(f"{cloud.base_url}/ui/units/{FRIDGE_B}")
    row = page.locator(f"tr[data-excursion='{excursion_id}']")
    form = row.locator("form.closure")
    await page.set_viewport_size({"width": 390, "height": 844})  # the form fits a phone
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.set_viewport_size({"width": 1400, "height": 1000})
    await form.locator("select[name=root_cause]").select_option(label="Power cut")
    await form.locator("select[name=corrective_action]").select_option(
        label="Products moved to a working unit"
    )
    await form.locator("input[name=sign_username]").fill("qa")
    await form.locator("input[name=sign_password]").fill("not my password")
    await form.locator("button").click()
    await expect(form.locator("output")).to_contain_text(
        "wrong user name, password or one-time code"
    )
    await form.locator("input[name=sign_password]").fill(PASSWORD)
    await form.locator("select[name=sign_meaning]").select_option("approved")
    await form.locator("button").click()
    await expect(form.locator("output")).to_contain_text("Closed by qa, signed: Quinn Quality")
    # the page is drawn again with the closure in place of the form
    await expect(row).to_have_attribute("data-closure", "closed", timeout=5_000)
    await expect(row).to_contain_text("Root cause: Power cut")
    await expect(row).to_contain_text("Corrective action: Products moved to a working unit")
    await expect(row.locator("ul.signed")).to_contain_text("Quinn Quality (qa), ")
    await expect(row.locator("ul.signed")).to_contain_text("UTC, approved")
    await page.close()
    # the refused signature's 401 is logged by the browser itself; nothing else may be
    assert [p for p in problems if "status of 401" not in p] == []
