"""Commissioning a fridge in the browser (issue 15.6), in headless Chromium.

The first admin comes from ``coldtrace users add``. In the browser, that admin creates a site,
a custom storage profile, a fridge location, registers a gateway (whose token the page shows
once) and mounts a sensor. The gateway's source and the sensor's NodeId are set through the
gateway-configuration API (``PUT /v1/gateways/{id}/sources/...``, docs/commissioning.md). A
real edge agent (``run_agent``), given only its gateway id, the cloud's URL and that token,
takes its configuration from the cloud, reads an in-process OPC-UA server (the fridge's PLC)
and uploads through the real ingest API; the cloud service's processor judges the readings
against the profile chosen on the page, and the excursion shows on the dashboard. No SQL and no
hand-written YAML.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from edge.agent import run_agent
from edge.cli import source_specs
from edge.config import EdgeConfig
from protocols.agent import installed_version
from tests.browser.conftest import BROWSER_MARKS, SCREENSHOTS, console_problems
from tests.support.cloud_processes import serve
from tests.support.opcua_servers import FAST, UaTestServer, running_server
from tests.support.temperature_sources import TEST_NAMESPACE

pytestmark = BROWSER_MARKS

SENSOR = "north-fridge-1.t"


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


def _agent_config(tmp_path: Path, base: str, token: str) -> EdgeConfig:
    """What a gateway needs to know before the cloud tells it the rest."""
    return EdgeConfig.model_validate({
        "gateway_id": "north-gw-1",
        "cloud": {"cloud_url": base, "allow_insecure_http": True, "token": token,
                  "linger": 0.05, "backoff_initial": 0.05, "backoff_max": 0.5},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "health": {"enabled": False},
        "remote_config": {"poll_interval": 0.2, "cache_path": str(tmp_path / "config.json"),
                          "start_timeout": 10},
    })  # fmt: skip


async def _configure_gateway(base: str, admin_token: str, endpoint: str, ns_uri: str) -> None:
    """The PLC as the gateway's source and the sensor's NodeId on it (admin, audited)."""
    headers = {"Authorization": f"Bearer {admin_token}",
               "X-Coldtrace-Reason": "commissioning of the north wing"}  # fmt: skip
    timing = {k: v.total_seconds() if isinstance(v, timedelta) else v for k, v in FAST.items()}
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        settings = {"endpoint": endpoint, "history_read": False, **timing}
        source = await client.put(
            "/v1/gateways/north-gw-1/sources/fridge-plc",
            json={"kind": "opcua", "settings": settings},
        )
        assert source.status_code in {200, 201}, source.text
        point = await client.put(
            f"/v1/gateways/north-gw-1/sources/fridge-plc/points/{SENSOR}",
            json={"address": f"nsu={ns_uri};s=fridge-b.Temperature", "payload": {}},
        )
        assert point.status_code in {200, 201}, point.text


async def _warm_fridge(plc: UaTestServer) -> None:
    """The fridge's PLC reports 12 °C for the last 10 minutes (one value a minute)."""
    now = datetime.now(UTC).replace(microsecond=0)
    for i in range(10, -1, -1):
        await plc.write("fridge-b", 12.0 + i / 100, now - timedelta(minutes=i))
        await asyncio.sleep(0.3)  # several publishing intervals: each value is its own change


async def _see_excursion(page: Page, base: str) -> None:
    await page.goto(f"{base}/ui")
    excursions = page.locator("#excursions")
    await expect(excursions).to_contain_text("Vaccine fridge 1", timeout=60_000)
    await expect(excursions).to_contain_text("Too warm", timeout=30_000)
    await page.screenshot(path=str(SCREENSHOTS / "admin-commissioned-excursion.png"))


@pytest.fixture
async def plc() -> AsyncIterator[UaTestServer]:
    async with running_server() as server:
        yield server


async def test_admin_commissions_a_fridge_and_its_excursion_is_raised(
    browser: Browser,
    timescale_url: str,
    monkeypatch: pytest.MonkeyPatch,
    plc: UaTestServer,
    tmp_path: Path,
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

        await page.goto(f"{base}/ui/admin/products")
        product = page.locator("form.admin-form:has(legend:text-is('Add or change a product'))")
        await product.locator("input[name=gtin]").fill("09506000134353")  # wrong check digit
        await product.locator("input[name=name]").fill("Influenza vaccine")
        await product.locator("input[name=reason]").fill("commissioning of the north wing")
        await product.locator("button[type=submit]").click()
        await expect(product.locator(".admin-result")).to_contain_text("check digit")
        await _save(page, "Add or change a product", {
            "gtin": "09506000134352", "stability_budget": "PT12H",
            "profile_id": "vaccines-2-8"}, select=("profile_id",))  # fmt: skip
        await expect(page.locator("table.admin-table")).to_contain_text("09506000134352")

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

        await _configure_gateway(base, admin_token, plc.endpoint, TEST_NAMESPACE)
        stop = asyncio.Event()
        config = _agent_config(tmp_path, base, gateway_token)
        agent = asyncio.create_task(run_agent(config, stop, [], build_sources=source_specs))
        try:
            await _warm_fridge(plc)
            await _see_excursion(page, base)
        finally:
            stop.set()
            await asyncio.wait_for(agent, 30)

        await page.goto(f"{base}/ui/admin/gateways")
        row = page.locator("tr:has-text('north-gw-1')")
        await expect(row).not_to_contain_text("—")  # last seen and clock skew are known now
        await expect(row).to_contain_text(installed_version())  # the agent's User-Agent
        await page.goto(f"{base}/ui/admin/audit")
        trail = page.locator("table.admin-table")
        for action in ("site.put", "profile.put", "location.put", "gateway.add", "sensor.mount"):
            await expect(trail).to_contain_text(action)
        await expect(trail).to_contain_text("commissioning of the north wing")
        assert problems == []
