"""Lot exposure across moves, and the profiles API, through HTTP."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from cloud.auth.model import Role
from cloud.auth.service import add_user
from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import post
from tests.support.cloud_ingest import app_client
from tests.support.coldchain_seed import (
    FRIDGE_A,
    FRIDGE_B,
    SENSOR,
    T0,
    Site,
    readings,
)

pytestmark = pytest.mark.integration
M = timedelta(minutes=1)


async def headers(url: str, role: Role = Role.VIEWER, name: str = "vera") -> dict[str, str]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        token = await add_user(conn, name, role)
        await conn.commit()
    return {"Authorization": f"Bearer {token}"}


async def test_exposure_follows_the_lot_between_fridges(site: Site) -> None:
    b1 = site.lots["b1"]
    # b1 moves from fridge B to fridge A at minute 60.
    async with await psycopg.AsyncConnection.connect(site.url) as conn:
        avail = Status.AVAILABLE
        move = Draft(Movement.MOVE, b1, 10, T0 + 60 * M, "op",
                     frm=Place(FRIDGE_B, avail), to=Place(FRIDGE_A, avail))  # fmt: skip
        await post(conn, [move])
        await conn.commit()
    # B is warm (9 °C) for 20 minutes while b1 is there; A is warm (10 °C) only before b1 came.
    b = [5.0] * 20 + [9.0] * 20 + [5.0] * 80
    a = [10.0] * 10 + [5.0] * 110
    await site.send(
        sorted(readings(SENSOR[FRIDGE_B], T0, b) + readings(SENSOR[FRIDGE_A], T0, a),
               key=lambda r: r.time)
    )  # fmt: skip
    viewer = await headers(site.url)
    async with app_client(site.url) as client:
        r = await client.get(
            f"/v1/lots/{b1}/exposure",
            params={"at": (T0 + 119 * M).isoformat(), "bucket": "PT1H"},
            headers=viewer,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        missing = await client.get("/v1/lots/999999/exposure", headers=viewer)
        anonymous = await client.get(f"/v1/lots/{b1}/exposure")
    assert missing.status_code == 404
    assert anonymous.status_code == 401
    assert [(s["location_id"], s["end"] is None) for s in body["stays"]] == [
        ("cc-dock", False), (FRIDGE_B, False), (FRIDGE_A, True),
    ]  # fmt: skip
    assert body["time_out_of_range"] == "PT20M"  # B's warm spell only, not A's
    assert body["time_unknown"] == "PT2M"  # the unmonitored dock
    assert body["budget_left"] == "PT1H38M"
    assert [x["location_id"] for x in body["excursions"]] == [FRIDGE_B]
    assert [b["max"] for b in body["trace"]] == [None, 9.0, 5.0]
    assert body["worst_window_mkt"] == pytest.approx(body["mkt"])  # under one 24 h window
    assert body["mkt_window"] == "P1D"


async def test_profiles_api(site: Site) -> None:
    viewer = await headers(site.url)
    admin = await headers(site.url, Role.ADMIN, "ada")
    custom = {
        "profile_id": "vaccine-15",
        "name": "Vaccine tolerant to 15 °C for short periods",
        "action_low": 2.0, "action_high": 15.0, "alert_low": 2.0, "alert_high": 8.0,
        "on_delay": "PT5M", "off_delay": "PT5M", "deadband": 0.3, "freeze_damage": True,
    }  # fmt: skip
    async with app_client(site.url) as client:
        listed = (await client.get("/v1/profiles", headers=viewer)).json()
        assert {p["profile_id"] for p in listed if p["standard"]} == {
            "std-refrigerated", "std-frozen", "std-controlled-room", "std-ultra-cold",
        }  # fmt: skip
        r = await client.put("/v1/profiles/vaccine-15", json=custom, headers=viewer)
        assert r.status_code == 403
        r = await client.put("/v1/profiles/vaccine-15", json=custom, headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["standard"] is False
        bad = {**custom, "alert_high": 16.0}
        r = await client.put("/v1/profiles/vaccine-15", json=bad, headers=admin)
        assert r.status_code == 422
        std = {**custom, "profile_id": "std-frozen"}
        r = await client.put("/v1/profiles/std-frozen", json=std, headers=admin)
        assert r.status_code == 409
        listed = (await client.get("/v1/profiles", headers=viewer)).json()
    stored = next(p for p in listed if p["profile_id"] == "vaccine-15")
    assert (stored["alert_high"], stored["action_high"], stored["on_delay"]) == (8.0, 15.0, "PT5M")
