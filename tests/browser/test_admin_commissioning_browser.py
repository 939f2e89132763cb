"""Commissioning a fridge in the browser (issue 15.6), in headless Chromium.

The only things done outside the browser are the ones a person does outside it too: the first
admin comes from ``coldtrace users add`` and the gateway posts readings. In the browser, an
admin creates a site, a custom storage profile, a fridge location, registers a gateway (whose
token the page shows once) and mounts a sensor. Readings then go through the real ingest API
(``POST /v1/batches`` with that token, as the edge uplink sends them), the service's processor
judges them against the profile chosen on the page, and the excursion shows on the dashboard.
No SQL and no hand-written YAML. (The gateway is a client of the ingest API, not an edge agent
configured from the cloud: that configuration, issue 15.3, is another part of the work.)
"""

from __future__ import annotations

import asyncio
import gzip
import sys
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from protocols.batch import Batch, Sequenced
from protocols.records import Reading
from tests.browser.conftest import BROWSER_MARKS, SCREENSHOTS, console_problems
from tests.support.cloud_processes import serve

pytestmark = BROWSER_MARKS

SENSOR = "north-fridge-1/t"


async def _cli(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "coldtrace", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def _save(
    page: Page, legend: str, values: dict[str, str], *, select: tuple[str, ...] = ()
) -> None:
    """Fills the form with that legend and saves it; the page reloads with "Saved"."""
    form = page.locator(f"form.admin-form:has(legend:text-is('{legend}'))")
    for name, value in values.items():
        if name in select:
            await form.locator(f"select[name={name}]").select_option(value)
        else:
            await form.locator(f"input[name={name}]").fill(value)
    await form.locator("input[name=reason]").fill("commissioning of the north wing")
    await form.locator("button[type=submit]").click()
    await expect(page.locator(".admin-notice")).to_contain_text("Saved", timeout=15_000)


async def _sign_in(page: Page, base: str, token: str) -> None:
    await page.goto(f"{base}/ui/login")
    opener = page.locator("summary:has-text('API token')")
    if await opener.count():
        await opener.click()  # the password form comes first
    await page.fill("input[name=token]", token)
    await page.click("form:has(input[name=token]) button")
    await expect(page).to_have_url(f"{base}/ui")


async def _send_readings(base: str, token: str, gateway_id: str) -> None:
    """Fridge 1 at 12 °C for the last 30 minutes, POSTed as the edge uplink does."""
    now = datetime.now(UTC).replace(microsecond=0)
    records = [
        Reading(sensor_id=SENSOR, time=t, value=12.0, received_at=t)
        for t in (now - timedelta(minutes=29 - i) for i in range(30))
    ]
    sequenced = [Sequenced(seq=i + 1, record=r) for i, r in enumerate(records)]
    batch = Batch(gateway_id=gateway_id, boot_id=uuid4(), sent_at=now, records=sequenced)
    async with httpx.AsyncClient(base_url=base) as client:
        answer = await client.post(
            "/v1/batches", content=gzip.compress(batch.model_dump_json().encode()),
            headers={"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                     "Content-Type": "application/json"},
        )  # fmt: skip
    assert answer.status_code == 200, answer.text


async def test_admin_commissions_a_fridge_and_its_excursion_is_raised(
    browser: Browser, timescale_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = await _cli("users", "add", "facility-admin", "--role", "admin",
                     "--database-url", timescale_url)  # fmt: skip
    admin_token = out.strip().splitlines()[0]
    monkeypatch.setenv("COLDTRACE_WEB_POLL_INTERVAL", "PT0.5S")
    with serve(timescale_url) as cloud:
        base = cloud.base_url
        page = await browser.new_page(viewport={"width": 1200, "height": 1000})
        problems = console_problems(page)
        await _sign_in(page, base, admin_token)

        await page.goto(f"{base}/ui/admin/sites")
        site = {"site_id": "north", "name": "North hospital pharmacy", "timezone": "Europe/Berlin"}
        await _save(page, "Add or change a site", site)
        await expect(page.locator("table.admin-table")).to_contain_text("North hospital pharmacy")

        await page.goto(f"{base}/ui/admin/profiles")
        await _save(page, "Add or change a custom profile", {
            "profile_id": "vaccines-2-8", "name": "Vaccines 2-8 °C", "action_low": "2",
            "action_high": "8", "on_delay": "PT5M", "off_delay": "PT5M",
            "silence_after": "PT30M"})  # fmt: skip

        await page.goto(f"{base}/ui/admin/locations")
        await _save(page, "Add or change a location", {
            "location_id": "north-fridge-1", "site_id": "north", "kind": "fridge",
            "name": "Vaccine fridge 1", "profile_id": "vaccines-2-8"},
            select=("site_id", "kind", "profile_id"))  # fmt: skip
        await expect(page.locator("[data-location='north-fridge-1']")).to_contain_text(
            "Vaccine fridge 1"
        )

        await page.goto(f"{base}/ui/admin/gateways")
        form = page.locator("form.admin-form:has(legend:text-is('Register a gateway'))")
        await form.locator("input[name=gateway_id]").fill("north-gw-1")
        await form.locator("select[name=site_id]").select_option("north")
        await form.locator("input[name=reason]").fill("new gateway in the north wing")
        await form.locator("button[type=submit]").click()
        token_shown = form.locator("code.admin-token")
        await expect(token_shown).to_be_visible(timeout=15_000)
        gateway_token = (await token_shown.inner_text()).strip()
        await page.reload()
        await expect(page.locator("table.admin-table")).to_contain_text("north-gw-1")
        assert gateway_token not in await page.content()  # shown once

        await page.goto(f"{base}/ui/admin/sensors")
        mounted_at = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
        await _save(page, "Mount a sensor", {
            "sensor_id": SENSOR, "location_id": "north-fridge-1",
            "mounted_at": mounted_at.isoformat().replace("+00:00", "Z"),
            "description": "fridge 1 probe"}, select=("location_id",))  # fmt: skip
        await expect(page.locator("table.admin-table")).to_contain_text("Vaccine fridge 1")

        await _send_readings(base, gateway_token, "north-gw-1")

        await page.goto(f"{base}/ui")
        excursions = page.locator("#excursions")
        await expect(excursions).to_contain_text("Vaccine fridge 1", timeout=30_000)
        await expect(excursions).to_contain_text("12.0", timeout=30_000)
        await page.screenshot(path=str(SCREENSHOTS / "admin-commissioned-excursion.png"))

        await page.goto(f"{base}/ui/admin/gateways")
        row = page.locator("tr:has-text('north-gw-1')")
        await expect(row).not_to_contain_text("—")  # last seen and clock skew are known now
        await page.goto(f"{base}/ui/admin/audit")
        trail = page.locator("table.admin-table")
        for action in ("site.put", "profile.put", "location.put", "gateway.add", "sensor.mount"):
            await expect(trail).to_contain_text(action)
        await expect(trail).to_contain_text("commissioning of the north wing")
        assert problems == []
