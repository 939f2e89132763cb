"""Excursions through the real ingest writer, processor and database (reading time, late data)."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
import pytest

from cloud.coldchain.profiles import STANDARD_PROFILES
from cloud.coldchain.step import ColdChainStep, check_silences
from cloud.coldchain.store import list_profiles
from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import post
from cloud.processing.steps import ProcessingBatch
from protocols.batch import Sequenced
from tests.support.coldchain_seed import (
    FRIDGE_A,
    FRIDGE_B,
    ROOM,
    SENSOR,
    T0,
    Site,
    readings,
)

pytestmark = pytest.mark.integration
M = timedelta(minutes=1)


async def statuses(site: Site) -> dict[str, str]:
    rows = await site.rows("SELECT lot_id, status FROM lots")
    by_id = {int(str(i)): str(s) for i, s in rows}
    return {name: by_id[lot] for name, lot in site.lots.items()}


async def excursions(site: Site) -> list[tuple[object, ...]]:
    return await site.rows(
        "SELECT location_id, kind, level, started_at, ended_at FROM excursions"
        " ORDER BY started_at, kind"
    )


def minute(t: object) -> float:
    assert isinstance(t, datetime)
    return (t - T0) / M


async def test_seeded_profiles_match_the_code(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        stored = {p.profile_id: (p, std) for p, std in await list_profiles(conn)}
    for profile_id, profile in STANDARD_PROFILES.items():
        assert stored[profile_id] == (profile, True)


async def test_action_excursion_quarantines_only_that_fridge(site: Site) -> None:
    warm = readings(SENSOR[FRIDGE_A], T0, [5.0] * 10 + [9.0] * 30 + [5.0] * 20)
    normal = readings(SENSOR[FRIDGE_B], T0, [5.0] * 60)
    room = readings(SENSOR[ROOM], T0, [22.0] * 60)
    await site.send(sorted(warm + normal + room, key=lambda r: r.time))
    rows = await excursions(site)
    assert [(r[0], r[1], r[2], minute(r[3]), minute(r[4])) for r in rows] == [
        (FRIDGE_A, "high", "action", 10.0, 40.0)
    ]
    assert await statuses(site) == {
        "a1": "quarantined", "a2": "quarantined", "b1": "available", "r1": "available",
    }  # fmt: skip
    entries = await site.rows(
        "SELECT lot_id, effective_at, reference FROM ledger_entries WHERE movement = 'quarantine'"
    )
    assert sorted(int(str(e[0])) for e in entries) == sorted([site.lots["a1"], site.lots["a2"]])
    assert {minute(e[1]) for e in entries} == {25.0}  # the on-delay elapsed on reading time
    kinds = [r[0] for r in await site.rows("SELECT kind FROM alerts ORDER BY alert_id")]
    assert kinds == ["excursion_opened", "quarantine", "excursion_closed"]
    outbox = await site.rows("SELECT count(*) FROM alert_outbox WHERE delivered_at IS NULL")
    assert outbox == [(len(kinds),)]
    lots = await site.rows("SELECT quarantined_lots FROM excursions")
    assert lots == [(sorted([site.lots["a1"], site.lots["a2"]]),)]


async def test_door_opening_within_on_delay_does_nothing(site: Site) -> None:
    values = [5.0] * 30 + [11.0, 12.5, 10.0, 8.5] + [5.0] * 30
    await site.send(readings(SENSOR[FRIDGE_A], T0, values))
    assert await excursions(site) == []
    assert set((await statuses(site)).values()) == {"available"}
    kinds = {r[0] for r in await site.rows("SELECT kind FROM alerts")}
    assert not kinds & {"excursion_opened", "quarantine"}


async def test_late_backlog_is_replayed_on_reading_time(site: Site) -> None:
    sensor = SENSOR[FRIDGE_B]
    await site.send(readings(sensor, T0, [5.0] * 11))  # minutes 0..10
    await site.send(readings(sensor, T0 + 50 * M, [5.0] * 11))  # 50..60: a 40-minute gap
    rows = await excursions(site)
    assert [(r[1], minute(r[3]), minute(r[4])) for r in rows] == [("no_data", 10.0, 50.0)]
    # The logger's own memory of minutes 11..49 arrives last: it was warm the whole time.
    await site.send(readings(sensor, T0 + 11 * M, [9.0] * 39))
    rows = await excursions(site)
    high = [r for r in rows if r[1] == "high"]
    assert [(r[2], minute(r[3]), minute(r[4])) for r in high] == [("action", 11.0, 50.0)]
    assert (await statuses(site))["b1"] == "quarantined"
    assert (await statuses(site))["a1"] == "available"
    state = await site.rows(
        "SELECT state->>'last_time' FROM coldchain_sensor_state WHERE sensor_id = %s", sensor
    )
    assert state[0][0] is not None
    assert datetime.fromisoformat(str(state[0][0])) == T0 + 60 * M


async def test_late_in_range_data_closes_an_open_excursion(site: Site) -> None:
    sensor = SENSOR[FRIDGE_B]
    await site.send(readings(sensor, T0, [5.0] * 5 + [7.5] * 20))  # alert excursion from 5
    assert [(r[2], r[4]) for r in await excursions(site)] == [("alert", None)]
    # A second probe's history shows the cabinet was back in range for the last 15 minutes.
    late = readings(sensor, T0 + 9.5 * M, [6.0] * 16)
    await site.send(late)
    rows = [r for r in await excursions(site) if r[1] == "high"]
    assert len(rows) == 1
    assert rows[0][4] is not None


async def test_silent_sensor_opens_no_data_from_gateway_time_and_clock(site: Site) -> None:
    await site.send(
        sorted(
            readings(SENSOR[FRIDGE_A], T0, [5.0] * 5) + readings(SENSOR[FRIDGE_B], T0, [5.0] * 5),
            key=lambda r: r.time,
        )
    )
    # Fridge A keeps reporting through the same gateway; B has gone quiet.
    await site.send(readings(SENSOR[FRIDGE_A], T0 + 5 * M, [5.0] * 30))
    rows = await excursions(site)
    assert [(r[0], r[1], minute(r[3]), r[4]) for r in rows] == [(FRIDGE_B, "no_data", 4.0, None)]
    # The scheduled check, against the clock, catches the whole gateway going silent.
    async with site.pool.connection() as conn:
        opened = await check_silences(conn, T0 + 60 * M)
    assert opened == 1
    rows = await excursions(site)
    assert {(r[0], r[1]) for r in rows if r[4] is None} == {
        (FRIDGE_A, "no_data"), (FRIDGE_B, "no_data"),
    }  # fmt: skip
    assert set((await statuses(site)).values()) == {"available"}  # silence does not quarantine
    await site.send(readings(SENSOR[FRIDGE_B], T0 + 61 * M, [5.0]))
    rows = await site.rows(
        "SELECT ended_at FROM excursions WHERE location_id = %s AND kind = 'no_data'", FRIDGE_B
    )
    assert [minute(r[0]) for r in rows] == [61.0]


async def test_late_excursion_names_lots_that_have_left_the_unit(site: Site) -> None:
    sensor = SENSOR[FRIDGE_B]
    b1 = site.lots["b1"]
    async with await psycopg.AsyncConnection.connect(site.url) as conn:
        avail = Status.AVAILABLE
        move = Draft(Movement.MOVE, b1, 10, T0 + 30 * M, "op",
                     frm=Place(FRIDGE_B, avail), to=Place(FRIDGE_A, avail))  # fmt: skip
        await post(conn, [move])
        await conn.commit()
    await site.send(readings(sensor, T0, [5.0] * 11))
    await site.send(readings(sensor, T0 + 50 * M, [5.0] * 11))
    await site.send(readings(sensor, T0 + 11 * M, [9.0] * 39))  # B was warm while b1 was there
    assert (await statuses(site))["b1"] == "available"  # it is in fridge A now
    alerts = await site.rows(
        "SELECT severity, detail->'moved_lots' FROM alerts WHERE detail ? 'moved_lots'"
    )
    assert alerts == [("critical", [b1])]


async def test_applying_a_batch_again_changes_nothing(site: Site) -> None:
    records = readings(SENSOR[FRIDGE_A], T0, [5.0] * 10 + [9.0] * 30 + [5.0] * 20)
    await site.send(records)
    tables = ("excursions", "alerts", "alert_outbox", "ledger_entries", "anomaly_scores")

    async def counts() -> list[object]:
        return [(await site.rows(f"SELECT count(*) FROM {t}"))[0][0] for t in tables]

    before = await counts()
    batch = ProcessingBatch(
        batch_id=0, gateway_id=site.gateway_id, boot_id=site.boot, first_seq=1,
        last_seq=len(records), received_at=T0,
        records=[Sequenced(seq=i + 1, record=r) for i, r in enumerate(records)],
    )  # fmt: skip
    async with site.pool.connection() as conn, conn.transaction():
        await ColdChainStep().apply(conn, batch)  # judged as late data: a full replay
    assert await counts() == before
    rows = await excursions(site)
    assert [(r[2], minute(r[3]), minute(r[4])) for r in rows] == [("action", 10.0, 40.0)]
