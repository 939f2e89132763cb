"""The dashboard in headless Chromium (Debian's, driven by Playwright): sign-in, an excursion
arriving live over server-sent events after readings went through the real ingest API and
processor, acknowledge, a QA release, the lot page; no console errors; screenshots for the
README in ``docs/screenshots/``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import (
    BROWSER_MARKS,
    SCREENSHOTS,
    console_problems,
    post_warm_readings,
    sign_in,
)
from tests.support.cloud_processes import CloudProcess
from tests.support.people import PASSWORD, give_password
from tests.support.web_dashboard import Seeded, seeded_site

pytestmark = BROWSER_MARKS


@pytest.fixture
async def seeded(timescale_url: str) -> AsyncIterator[Seeded]:
    # history ends 30 minutes ago, so the test's own readings continue it up to now
    async with seeded_site(timescale_url, warm=False, ending=timedelta(minutes=30)) as s:
        await s.site.rows("UPDATE sites SET timezone = 'Europe/Paris' RETURNING 1")
        yield s


@pytest.fixture
def poll_interval() -> str:
    return "PT0.5S"  # live updates within the tests' timeouts


async def test_live_excursion_release_and_lot_page(
    cloud: CloudProcess, browser: Browser, seeded: Seeded, timescale_url: str
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    problems = console_problems(page)
    base = cloud.base_url

    await sign_in(page, base, seeded.tokens["qa"])
    fridge_a = page.locator('[data-location="cc-fridge-a"]')
    await expect(fridge_a).to_have_attribute("data-state", "silent")  # last reading 30 min ago
    await expect(page.locator("#live")).to_be_visible()  # the event stream is open
    await page.screenshot(path=str(SCREENSHOTS / "dashboard-overview.png"), full_page=True)

    # readings through ingest → processor → excursion and quarantine → SSE → the open page
    sent = datetime.now(UTC)
    await post_warm_readings(timescale_url, base)
    await expect(fridge_a).to_have_attribute("data-state", "excursion", timeout=15_000)
    seen_after = (datetime.now(UTC) - sent).total_seconds()
    assert seen_after < 15
    assert page.url == f"{base}/ui"  # no reload: the section was swapped in
    # fridge A's action-level excursion; fridge B and the room are "no data" since 30 min ago
    await expect(page.locator("tr.action[data-excursion]")).to_have_count(1)
    lots = seeded.site.lots
    row = page.locator(f'#quarantine tr[data-lot="{lots["a1"]}"]')
    await expect(row).to_be_visible()
    await page.screenshot(path=str(SCREENSHOTS / "dashboard-excursion.png"), full_page=True)

    await page.locator("#excursions button.ack").first.click()
    await expect(page.locator("#excursions")).to_contain_text("✓", timeout=10_000)

    # plain words and what to do for the excursion
    excursion = page.locator("tr.action[data-excursion]")
    await expect(excursion).to_contain_text("Too warm for")
    await expect(excursion).to_contain_text("What to do: Do not use the products inside")
    # its start in the site's time zone (Paris), the UTC time kept in the title
    since = excursion.locator("time").first
    await expect(since).to_have_attribute("data-local", "1")
    utc = datetime.fromisoformat(str(await since.get_attribute("datetime")))
    paris = utc.astimezone(ZoneInfo("Europe/Paris"))
    await expect(since).to_have_text(f"{paris:%Y-%m-%d %H:%M} {paris.tzname()}")

    await row.locator("input[name=reason]").fill("Stability data cover 12 °C for 30 min")
    # the e-signature: name and password typed again at the moment of signing
    await give_password(timescale_url, "qa", full_name="Quinn Quality")
    await row.locator("input[name=sign_username]").fill("qa")
    await row.locator("input[name=sign_password]").fill(PASSWORD)
    # fridge A's excursion is still open: a release needs the box ticked
    await row.locator("button[value=release]").click()
    await expect(row.locator("output")).to_have_text(
        "An excursion is still open: tick the box to release anyway."
    )
    await row.locator("input[name=confirm_open_excursion]").check()
    await row.locator("button[value=release]").click()
    await expect(row.locator("output")).to_contain_text("Released, signed: Quinn Quality (qa)")
    await expect(page.locator(f'#quarantine tr[data-lot="{lots["a1"]}"]')).to_have_count(
        0, timeout=10_000
    )
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute(
            "SELECT actor, reason FROM ledger_entries WHERE movement = 'release' AND lot_id = %s",
            (lots["a1"],),
        )
        assert await cur.fetchall() == [("qa", "Stability data cover 12 °C for 30 min")]
        cur = await conn.execute(
            "SELECT actor FROM audit_log WHERE action = 'release_during_open_excursion'"
            " AND subject = %s",
            (f"lot:{lots['a1']}",),
        )
        assert await cur.fetchall() == [("qa",)]
    await page.goto(f"{base}/ui/lots/{lots['a1']}")
    await expect(page.locator("section.decided")).to_contain_text("Released by qa on")
    await expect(page.locator("section.signatures")).to_contain_text("Quinn Quality (qa), ")
    await expect(page.locator("section.decided")).to_contain_text(
        "Released while an excursion was still open"
    )

    await page.goto(f"{base}/ui/lots/{lots['a2']}")
    await expect(page.locator("section.lot")).to_have_attribute("data-status", "quarantined")
    await expect(page.locator(".lot-exposure canvas").first).to_be_visible()
    await page.screenshot(path=str(SCREENSHOTS / "lot-exposure.png"), full_page=True)
    await page.close()
    assert problems == []

    # an operator is offered Acknowledge, never Release or Reject
    operator = await browser.new_page(viewport={"width": 1400, "height": 1000})
    await sign_in(operator, base, seeded.tokens["operator"])
    await expect(operator.locator(f'#quarantine tr[data-lot="{lots["a2"]}"]')).to_contain_text(
        "waiting for QA"
    )
    await expect(operator.locator("button[value=release]")).to_have_count(0)
    await expect(operator.locator("button[value=reject]")).to_have_count(0)
    await operator.goto(f"{base}/ui/lots/{lots['a2']}")
    await expect(operator.locator("main")).to_contain_text("Waiting for QA.")
    await expect(operator.locator("form.disposition")).to_have_count(0)
    # a mistyped address: a page in the dashboard's layout, not JSON
    missing = await operator.goto(f"{base}/ui/does-not-exist")
    assert missing is not None
    assert missing.status == 404
    await expect(operator.locator("section.error-page h2")).to_have_text("Not found")
    await expect(operator.locator("header a.brand")).to_be_visible()
    await operator.close()
