"""Never show stale data as live (issue 16.2), in headless Chromium: the cloud service is killed
under an open dashboard, which must then say "connection lost, data as of HH:MM" in the site's
time zone and, once the units' data is older than their silence interval (the page clock is
moved on by Playwright), grey each card with its age. The dashboard comes back by itself when a
service answers again."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from playwright.async_api import Browser, ConsoleMessage, expect

from tests.browser.conftest import BROWSER_MARKS, SCREENSHOTS, sign_in
from tests.support.cloud_processes import CloudProcess, serve
from tests.support.coldchain_seed import SITE
from tests.support.web_dashboard import Seeded, seeded_site

pytestmark = BROWSER_MARKS
ZONE = "Europe/Paris"


@pytest.fixture
async def seeded(timescale_url: str) -> AsyncIterator[Seeded]:
    async with seeded_site(timescale_url, warm=False) as s:  # readings up to now
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            await conn.execute("UPDATE sites SET timezone = %s WHERE site_id = %s", (ZONE, SITE))
            await conn.commit()
        yield s


@pytest.fixture
def poll_interval() -> str:
    return "PT0.5S"  # live updates within the tests' timeouts


async def test_lost_connection_is_shown_and_old_data_greyed(
    cloud: CloudProcess, browser: Browser, seeded: Seeded, timescale_url: str
) -> None:
    page = await browser.new_page(viewport={"width": 1200, "height": 900})
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # the failed reconnections to the killed service are expected; anything else is not
        expected = any(
            what in message.text
            for what in ("/ui/events", "ERR_CONNECTION_REFUSED", "ERR_INCOMPLETE_CHUNKED_ENCODING")
        )
        if message.type in ("error", "warning") and not expected:
            problems.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    await page.clock.install()  # real time flows; fast_forward moves it on below
    base = cloud.base_url
    await sign_in(page, base, seeded.tokens["qa"])
    await expect(page.locator("#live")).to_be_visible()
    cards = page.locator("article.unit[data-last]")
    assert await cards.count() >= 3
    await expect(page.locator("article.unit.stale")).to_have_count(0)  # fresh data
    await expect(page.locator("#connection-lost")).to_have_count(0)

    as_of = datetime.now(UTC).astimezone(ZoneInfo(ZONE))
    cloud.kill()  # the server is gone mid-stream
    banner = page.locator("#connection-lost")
    await expect(banner).to_be_visible(timeout=15_000)
    await expect(page.locator("#live")).to_be_hidden()
    text = await banner.text_content() or ""
    m = re.fullmatch(r"connection lost, data as of (\d\d):(\d\d) Europe/Paris", text)
    assert m, text
    shown = as_of.replace(hour=int(m[1]), minute=int(m[2]), second=0, microsecond=0)
    assert abs((shown - as_of.replace(second=0, microsecond=0)).total_seconds()) <= 120, text
    await expect(page.locator("article.unit.stale")).to_have_count(0)  # not old yet

    # 20 minutes later, still disconnected: each card whose last reading is older than its
    # own silence interval is greyed with its age, the others are not
    await page.clock.fast_forward("20:00")
    later = datetime.now(UTC) + timedelta(minutes=20)
    expected: dict[str, bool] = {}
    for card in await cards.all():
        last = datetime.fromisoformat(await card.get_attribute("data-last") or "")
        silence = timedelta(seconds=int(await card.get_attribute("data-silence-s") or ""))
        expected[await card.get_attribute("data-location") or ""] = later - last > silence
    assert any(expected.values()), expected  # the seeded profiles: 15 min for the fridges
    stale = page.locator("article.unit.stale")
    await expect(stale).to_have_count(sum(expected.values()))
    for location in await stale.evaluate_all("cards => cards.map(c => c.dataset.location)"):
        assert expected[location], location
    ages = await page.locator("article.unit.stale .age").all_text_contents()
    assert len(ages) == sum(expected.values())
    for age in ages:
        assert re.fullmatch(r"no data for 2\d min", age), ages
    await expect(banner).to_contain_text("data as of")  # still the time of the last event
    await page.screenshot(path=str(SCREENSHOTS / "connection-lost.png"))

    # a service answers again: the page reconnects by itself and the banner goes
    with serve(timescale_url, port=int(base.rsplit(":", 1)[1])):
        await expect(page.locator("#connection-lost")).to_have_count(0, timeout=30_000)
        await expect(page.locator("#live")).to_be_visible()
    assert not problems, problems
