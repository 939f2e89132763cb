"""The dashboard in headless Chromium (Debian's, driven by Playwright): sign-in, an excursion
arriving live over server-sent events after readings went through the real ingest API and
processor, acknowledge, a QA release, the lot page; no console errors; screenshots for the
README in ``docs/screenshots/``."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import httpx
import psycopg
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from cloud.ingest.auth import add_gateway
from protocols.batch import Batch, Sequenced
from tests.support.cloud_processes import CloudProcess, serve
from tests.support.coldchain_seed import FRIDGE_A, SENSOR, SITE, readings
from tests.support.web_dashboard import Seeded, seeded_site

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed"),
]


@pytest.fixture
async def seeded(timescale_url: str) -> AsyncIterator[Seeded]:
    # history ends 30 minutes ago, so the test's own readings continue it up to now
    async with seeded_site(timescale_url, warm=False, ending=timedelta(minutes=30)) as s:
        yield s


@pytest.fixture
def cloud(
    timescale_url: str, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CloudProcess]:
    monkeypatch.setenv("COLDTRACE_WEB_POLL_INTERVAL", "PT0.5S")
    with serve(timescale_url) as process:
        yield process


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


async def post_warm_readings(url: str, base: str) -> None:
    """Fridge A at 12 °C for the last 30 minutes, POSTed as a gateway does."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        token = await add_gateway(conn, "browser-gw", SITE)
        await conn.commit()
    now = datetime.now(UTC).replace(microsecond=0)
    records = readings(SENSOR[FRIDGE_A], now - timedelta(minutes=29), [12.0] * 30)
    batch = Batch(
        gateway_id="browser-gw", boot_id=uuid4(), sent_at=now,
        records=[Sequenced(seq=i + 1, record=r) for i, r in enumerate(records)],
    )  # fmt: skip
    async with httpx.AsyncClient(base_url=base) as client:
        answer = await client.post(
            "/v1/batches",
            content=gzip.compress(batch.model_dump_json().encode()),
            headers={"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                     "Content-Type": "application/json"},
        )  # fmt: skip
    assert answer.status_code == 200, answer.text


async def sign_in(page: Page, base: str, token: str) -> None:
    await page.goto(f"{base}/ui")
    await expect(page).to_have_url(f"{base}/ui/login")
    await page.fill("input[name=token]", token)
    await page.click("form[action='/ui/login'] button")
    await expect(page).to_have_url(f"{base}/ui")


async def test_live_excursion_release_and_lot_page(
    cloud: CloudProcess, browser: Browser, seeded: Seeded, timescale_url: str
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
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

    await row.locator("input[name=reason]").fill("Stability data cover 12 °C for 30 min")
    await row.locator("button[value=release]").click()
    await expect(row.locator("output")).to_have_text("Released.")
    await expect(page.locator(f'#quarantine tr[data-lot="{lots["a1"]}"]')).to_have_count(
        0, timeout=10_000
    )
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute(
            "SELECT actor, reason FROM ledger_entries WHERE movement = 'release' AND lot_id = %s",
            (lots["a1"],),
        )
        assert await cur.fetchall() == [("qa", "Stability data cover 12 °C for 30 min")]

    await page.goto(f"{base}/ui/lots/{lots['a2']}")
    await expect(page.locator("section.lot")).to_have_attribute("data-status", "quarantined")
    await expect(page.locator(".lot-exposure canvas").first).to_be_visible()
    await page.screenshot(path=str(SCREENSHOTS / "lot-exposure.png"), full_page=True)
    await page.close()
    assert problems == []
