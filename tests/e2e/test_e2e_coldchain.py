"""Cold chain, all real processes: a fridge's compressor fails and exactly its lots are quarantined.

The OPC-UA simulator plays the ``compressor-failure`` scenario on fridge A (400 times faster
than real time: an hour and a half of simulated warming in about 14 s) while fridge B (OPC-UA)
and fridge C (MQTT logger) stay healthy. Master data is written to the database as an operator
would load it, stock is put away through the ledger API by an operator, and users come from
``coldtrace users add``. The readings travel simulator → ``coldtrace edge run`` →
``coldtrace cloud serve`` (processor with the cold-chain step). Then:

* an action-level high excursion opens at fridge A, and none anywhere else;
* exactly the two lots in fridge A are quarantined; the lots in fridges B and C and on the dock
  stay available;
* a QA user releases one of them through the API with a reason and signature meaning; the other
  stays quarantined;
* ``coldtrace ledger verify`` finds the hash chain, head and balances intact.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from cloud.ledger.service import ensure_lot
from tests.e2e import processes
from tests.e2e.rig import TemperatureRig
from tests.support.people import give_password, signature

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

GTIN = "09506000134352"
STOCK = {"A1": "fridge-a", "A2": "fridge-a", "B1": "fridge-b", "C1": "fridge-c", "D1": "dock"}


async def load_master_data(url: str, site: str) -> dict[str, int]:
    """Site, storage units with their standard profiles, sensors, a product and its lots."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("INSERT INTO sites (site_id, name) VALUES (%s, 'E2E site')", (site,))
        units = (("fridge-a", "fridge", "std-refrigerated"), ("fridge-b", "fridge",
                 "std-refrigerated"), ("fridge-c", "fridge", "std-refrigerated"),
                 ("dock", "dock_door", None))  # fmt: skip
        for loc, kind, profile in units:
            await conn.execute(
                "INSERT INTO locations (location_id, site_id, kind, name, profile_id)"
                " VALUES (%s, %s, %s, %s, %s)",
                (loc, site, kind, loc, profile),
            )
        for sensor, loc in (("fridge-a.t", "fridge-a"), ("fridge-b.t", "fridge-b"),
                            ("fridge-c.t", "fridge-c")):  # fmt: skip
            await conn.execute(
                "INSERT INTO sensors (sensor_id, location_id) VALUES (%s, %s)", (sensor, loc)
            )
        await conn.execute(
            "INSERT INTO products (gtin, name, profile_id, stability_budget)"
            " VALUES (%s, 'Vaccine', 'std-refrigerated', '2 hours')",
            (GTIN,),
        )
        lots = {name: await ensure_lot(conn, gtin=GTIN, lot_number=name, expiry=None)
                for name in STOCK}  # fmt: skip
        await conn.commit()
    return lots


async def put_stock(api: httpx.AsyncClient, lots: dict[str, int], at: datetime) -> None:
    """Each lot received at the dock and put away in its unit, through the ledger API."""
    for name, loc in STOCK.items():
        moves = [{"movement": "receive", "to_location": "dock", "to_status": "available"}]
        if loc != "dock":
            moves.append({"movement": "put_away", "from_location": "dock",
                          "from_status": "available", "to_location": loc,
                          "to_status": "available"})  # fmt: skip
        for i, move in enumerate(moves):
            body = {**move, "lot_id": lots[name], "quantity": 10, "reason": "e2e stock",
                    "effective_at": (at + timedelta(minutes=i)).isoformat()}  # fmt: skip
            answer = await api.post("/v1/ledger/movements", json=body)
            assert answer.status_code == 201, answer.text


async def wait_action_excursion(api: httpx.AsyncClient, within: float = 40.0) -> None:
    deadline = time.monotonic() + within
    while True:
        found = (await api.get("/v1/excursions", params={"limit": 1000})).json()
        action = [e for e in found if e["level"] == "action"]
        if action and action[0]["lots"]:
            return
        assert time.monotonic() < deadline, f"no action excursion with lots: {found}"
        await asyncio.sleep(0.3)


async def statuses(api: httpx.AsyncClient) -> dict[tuple[int, str], str]:
    balances = (await api.get("/v1/ledger/balances")).json()
    return {(b["lot_id"], b["location_id"]): b["status"] for b in balances}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_compressor_failure_quarantines_exactly_that_fridge_and_qa_releases(
    rig: TemperatureRig,
) -> None:
    rig.time_scale = 400.0
    rig.start = datetime.now(UTC) - timedelta(minutes=100)  # the run ends before "now"
    url = rig.database_url
    lots = await load_master_data(url, rig.site_id)
    await rig.register(rig.site_id)
    tokens = {role: await processes.user_token(url, f"e2e-{role}", role)
              for role in ("operator", "qa", "admin")}  # fmt: skip
    await rig.start_cloud()
    site = rig.site()
    opcua_args = [*rig.sim_args(site, 14), "--port", "0", "--update-interval", "0.1",
                  "--security", "None", "--scenario", "compressor-failure",
                  "--scenario-unit", "fridge-a"]  # fmt: skip
    opcua, info = await rig.simulator("opcua", opcua_args)
    base = f"http://127.0.0.1:{rig.cloud_port}"
    async with httpx.AsyncClient(base_url=base, headers=bearer(tokens["operator"])) as api:
        await put_stock(api, lots, rig.start - timedelta(hours=1))
        await rig.start_edge(rig.edge_config(str(info["endpoint"])))
        mqtt, _ = await rig.simulator("mqtt", [*rig.sim_args(site, 14), "--broker", rig.mqtt_url])
        await wait_action_excursion(api)
        assert await opcua.wait(30) == 0
        assert await mqtt.wait(30) == 0
        await check_quarantine(api, lots)
        await give_password(url, "e2e-qa", full_name="E2E Quality")
        await check_release(api, lots, tokens)
    report = await processes.coldtrace("ledger", "verify", "--database-url", url)
    assert "ledger intact" in report


async def check_quarantine(api: httpx.AsyncClient, lots: dict[str, int]) -> None:
    """One action excursion, at fridge A; exactly its two lots quarantined, nothing else."""
    found = (await api.get("/v1/excursions", params={"limit": 1000})).json()
    action = [e for e in found if e["level"] == "action"]
    assert [(e["location_id"], e["kind"]) for e in action] == [("fridge-a", "high")]
    assert {e["location_id"] for e in found if e["kind"] != "no_data"} == {"fridge-a"}
    assert {lot["lot_id"] for lot in action[0]["lots"]} == {lots["A1"], lots["A2"]}
    assert await statuses(api) == expected_statuses(lots, quarantined={"A1", "A2"})


async def check_release(
    api: httpx.AsyncClient, lots: dict[str, int], tokens: dict[str, str]
) -> None:
    """QA (and only QA) releases A1 with a reason; A2 stays quarantined; the chain verifies."""
    release = {"decision": "release", "reason": "stability data covers 2 h at 12 °C",
               "signature": signature("e2e-qa", "released")}  # fmt: skip
    answer = await api.post(f"/v1/lots/{lots['A1']}/disposition", json=release)
    assert answer.status_code == 403  # an operator may not release
    answer = await api.post(f"/v1/lots/{lots['A1']}/disposition", json=release,
                            headers=bearer(tokens["qa"]))  # fmt: skip
    if answer.status_code == 409:  # the fridge's excursion is still open: QA confirms it
        assert answer.json()["detail"]["confirm"] == "open_excursion"
        answer = await api.post(f"/v1/lots/{lots['A1']}/disposition",
                                json=release | {"confirm_open_excursion": True},
                                headers=bearer(tokens["qa"]))  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["signature"]["printed_name"] == "E2E Quality"
    expected = expected_statuses(lots, quarantined={"A2"}, released={"A1"})
    assert await statuses(api) == expected
    entries = (await api.get("/v1/ledger/entries", params={"lot_id": lots["A1"]})).json()
    signed = [e for e in entries if e["signature_meaning"]]
    assert [(e["actor"], e["reason"]) for e in signed] == [("e2e-qa", release["reason"])]
    verify = await api.get("/v1/ledger/verify", headers=bearer(tokens["admin"]))
    assert verify.json()["ok"] is True


def expected_statuses(
    lots: dict[str, int], quarantined: set[str], released: frozenset[str] | set[str] = frozenset()
) -> dict[tuple[int, str], str]:
    out = {(lots[n], loc): "available" for n, loc in STOCK.items()}
    out |= {(lots[n], STOCK[n]): "quarantined" for n in quarantined}
    out |= {(lots[n], STOCK[n]): "released" for n in released}
    return out
