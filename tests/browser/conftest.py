"""Browser-test set-up shared by every page test: Debian's headless Chromium driven by
Playwright, the cloud service for a seeded site, signing in, and a warm fridge posted through
the real ingest API."""

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
from tests.support.web_dashboard import Seeded

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
# every browser test module: ``pytestmark = BROWSER_MARKS``
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed"),
]


@pytest.fixture
def poll_interval() -> str | None:
    """The dashboard's poll interval (ISO 8601) for ``cloud``; a module overrides this fixture
    for faster live updates, None keeps the service's default."""
    return None


@pytest.fixture
def cloud(
    timescale_url: str,
    seeded: Seeded,
    poll_interval: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[CloudProcess]:
    """The cloud service, started after the module's ``seeded`` site is in the database."""
    if poll_interval is not None:
        monkeypatch.setenv("COLDTRACE_WEB_POLL_INTERVAL", poll_interval)
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


def console_problems(page: Page) -> list[str]:
    """A list that fills with the page's console errors and warnings and uncaught errors."""
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    return problems


async def sign_in(page: Page, base: str, token: str) -> None:
    await page.goto(f"{base}/ui")
    await expect(page).to_have_url(f"{base}/ui/login")
    await page.click("summary:has-text('API token')")  # the password form comes first
    await page.fill("input[name=token]", token)
    await page.click("form:has(input[name=token]) button")
    await expect(page).to_have_url(f"{base}/ui")


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
