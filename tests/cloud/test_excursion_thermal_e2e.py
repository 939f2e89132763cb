"""End to end with the thermal simulator: fault scenarios through ingest, processor, ledger."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from cloud.coldchain.step import check_silences
from simulators.scenarios import ScenarioPlayer, named
from tests.support.coldchain_seed import (
    FRIDGE_A,
    FRIDGE_B,
    SENSOR,
    T0,
    Site,
    simulate,
    site_units,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
M = timedelta(minutes=1)


async def statuses(site: Site) -> dict[str, str]:
    rows = await site.rows("SELECT lot_id, status FROM lots")
    by_id = {int(str(i)): str(s) for i, s in rows}
    return {name: by_id[lot] for name, lot in site.lots.items()}


async def send_every(site: Site, records: list[object], period: timedelta) -> None:
    """Sends the readings as the uplink would: one batch per ``period`` of reading time."""
    batch: list[object] = []
    for r in records:
        if batch and r.time - batch[0].time >= period:  # type: ignore[attr-defined]
            await site.send(batch)  # type: ignore[arg-type]
            batch = []
        batch.append(r)
    if batch:
        await site.send(batch)  # type: ignore[arg-type]


async def test_compressor_failure_quarantines_exactly_that_fridge(site: Site) -> None:
    units = site_units(T0 - timedelta(hours=2))
    player = ScenarioPlayer(named("compressor-failure", FRIDGE_A), units, start=T0)
    records = simulate(units, player, T0, T0 + timedelta(hours=2))
    await send_every(site, records, timedelta(minutes=15))  # type: ignore[arg-type]
    assert await statuses(site) == {
        "a1": "quarantined", "a2": "quarantined", "b1": "available", "r1": "available",
    }  # fmt: skip
    rows = await site.rows(
        "SELECT location_id, kind, level, started_at FROM excursions WHERE kind <> 'no_data'"
    )
    assert {(r[0], r[1], r[2]) for r in rows} == {(FRIDGE_A, "high", "action")}
    started = rows[0][3]
    assert isinstance(started, datetime)
    assert T0 + 10 * M < started < T0 + 90 * M
    kinds = [r[0] for r in await site.rows("SELECT kind FROM alerts ORDER BY at, alert_id")]
    # The forecast warned before the excursion opened.
    assert "early_warning" in kinds
    assert kinds.index("early_warning") < kinds.index("excursion_opened")


async def test_a_door_opening_within_the_on_delay_does_not_quarantine(site: Site) -> None:
    units = site_units(T0 - timedelta(hours=2))
    player = ScenarioPlayer(named("busy-day", FRIDGE_B), units, start=T0)
    records = simulate(units, player, T0, T0 + timedelta(hours=6))
    await send_every(site, records, timedelta(minutes=30))  # type: ignore[arg-type]
    assert set((await statuses(site)).values()) == {"available"}
    assert await site.rows("SELECT kind FROM excursions") == []


async def test_power_cut_with_gateway_offline_is_judged_on_reading_time(site: Site) -> None:
    units = site_units(T0 - timedelta(hours=2))
    player = ScenarioPlayer(named("power-cut", FRIDGE_A), units, start=T0)
    records = simulate(units, player, T0, T0 + timedelta(hours=5))
    # The site's power cut also takes the gateway down: nothing arrives from minute 10 until
    # power is back (3 h 10 min), then the edge outbox sends its whole backlog at once.
    before = [r for r in records if r.time <= T0 + 10 * M]
    backlog = [r for r in records if r.time > T0 + 10 * M]
    await site.send(before)
    async with site.pool.connection() as conn:
        # The scheduled check sees every sensor of the gateway go silent.
        assert await check_silences(conn, T0 + 60 * M) == 3
    assert set((await statuses(site)).values()) == {"available"}
    await site.send(backlog, chunk=5000)
    rows = await site.rows(
        "SELECT location_id, kind, level, started_at, escalated_at, ended_at FROM excursions"
        " ORDER BY started_at"
    )
    no_data = [r for r in rows if r[1] == "no_data"]
    assert {r[0] for r in no_data} == set(units)
    assert all(r[5] is not None for r in no_data)  # closed by the backlog
    high = [r for r in rows if r[1] == "high"]
    assert [(r[0], r[2]) for r in high] == [(FRIDGE_A, "action")]
    started, escalated = high[0][3], high[0][4]
    assert isinstance(started, datetime)
    assert isinstance(escalated, datetime)
    # Judged on reading time: the excursion began during the cut, long before the data arrived.
    assert T0 + 10 * M < started < T0 + 190 * M
    assert escalated - started >= timedelta(minutes=15)
    assert escalated < T0 + 190 * M  # quarantined as of the reading time the action level held
    assert await statuses(site) == {
        "a1": "quarantined", "a2": "quarantined", "b1": "available", "r1": "available",
    }  # fmt: skip
    quarantine = await site.rows(
        "SELECT DISTINCT effective_at FROM ledger_entries WHERE movement = 'quarantine'"
    )
    assert quarantine == [(escalated,)]


async def test_a_five_minute_logger_is_warned_before_the_breach(site: Site) -> None:
    # The same failure read by a five-minute MQTT logger: the models are defined in time, so the
    # warning still comes before the product passes 8 °C, and before the excursion opens.
    units = site_units(T0 - timedelta(hours=2))
    player = ScenarioPlayer(named("compressor-failure", FRIDGE_A), units, start=T0)
    records = simulate(units, player, T0, T0 + timedelta(hours=2), every=5 * M)
    await send_every(site, records, timedelta(minutes=30))  # type: ignore[arg-type]
    fridge_a = [r for r in records if r.sensor_id == SENSOR[FRIDGE_A] and r.value is not None]
    breach = min(r.time for r in fridge_a if r.value is not None and r.value > 8.0)
    alerts = await site.rows(
        "SELECT kind, at FROM alerts WHERE location_id = %s ORDER BY at, alert_id", FRIDGE_A
    )
    kinds = [str(k) for k, _ in alerts]
    assert "early_warning" in kinds
    warned = next(at for k, at in alerts if k == "early_warning")
    assert isinstance(warned, datetime)
    assert warned <= breach - 10 * M
    assert kinds.index("early_warning") < kinds.index("excursion_opened")
    assert await statuses(site) == {
        "a1": "quarantined", "a2": "quarantined", "b1": "available", "r1": "available",
    }  # fmt: skip
