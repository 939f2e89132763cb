"""The alarms section in headless Chromium: an excursion posted through ingest is routed by the
service's own alarm worker (e-mail to a real SMTP server), appears as escalating on the open
dashboard, and an operator acknowledges it there with a comment, which is recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from playwright.async_api import Browser, expect

from cloud.alarms.policy import Policy
from tests.browser.conftest import BROWSER_MARKS, post_warm_readings, sign_in
from tests.support.alarm_receivers import smtp_sink
from tests.support.alarm_setup import add_channel, add_contact, add_policy, contact, steps
from tests.support.cloud_processes import serve
from tests.support.web_dashboard import Seeded, seeded_site

pytestmark = BROWSER_MARKS


@pytest.fixture
async def seeded(timescale_url: str) -> AsyncIterator[Seeded]:
    async with seeded_site(timescale_url, warm=False, ending=timedelta(minutes=30)) as s:
        yield s


async def test_operator_acknowledges_an_escalating_alarm_with_a_comment(
    seeded: Seeded, timescale_url: str, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLDTRACE_WEB_POLL_INTERVAL", "PT0.5S")
    site = seeded.site
    async with smtp_sink() as smtp:
        await add_channel(site, "ana-mail", smtp.url("ana@example.org"))
        await add_contact(site, "ana", "ana-mail")
        await add_policy(site, "site", Policy(steps=steps([contact("ana")], [contact("ana")]),
                                              kinds=["excursion_opened"]))  # fmt: skip
        with serve(timescale_url) as cloud:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            problems: list[str] = []
            page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
            await sign_in(page, cloud.base_url, seeded.tokens["operator"])
            await post_warm_readings(timescale_url, cloud.base_url)
            row = page.locator("#alarms tr[data-alarm]")
            await expect(row).to_have_count(1, timeout=20_000)
            await expect(row).to_contain_text("1 sent", timeout=10_000)
            await row.locator("input.ack-note").fill("door was open, closed and checked")
            await row.locator("button.ack").click()
            # acknowledged: the live update takes it off the escalating list
            await expect(page.locator("#alarms")).to_contain_text(
                "No alarm is escalating.", timeout=10_000
            )
            assert problems == []
            await page.close()  # ends the event stream, so the service stops at once
    acknowledged = await site.rows(
        "SELECT acknowledged_by, ack_note FROM alerts WHERE kind = 'excursion_opened'"
    )
    assert acknowledged == [("operator", "door was open, closed and checked")]
    assert len(smtp.mails) == 1
