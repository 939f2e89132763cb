"""Quarantine → alarm list → QA disposition → exposure kept, through the HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import psycopg
import pytest

from cloud.auth.model import Role
from cloud.auth.service import add_user
from cloud.storage.database import make_pool
from tests.support.cloud_ingest import app_client
from tests.support.coldchain_seed import FRIDGE_A, SENSOR, T0, Site, make_site, readings
from tests.support.people import give_password, signature

pytestmark = pytest.mark.integration
M = timedelta(minutes=1)


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[Site]:
    pool = make_pool(database_url, max_size=4)
    async with pool:
        yield await make_site(database_url, pool)


async def tokens(url: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for name, role in (("quinn", Role.QA), ("otto", Role.OPERATOR), ("vera", Role.VIEWER)):
            out[name] = {"Authorization": f"Bearer {await add_user(conn, name, role)}"}
        await conn.commit()
    await give_password(url, "quinn", full_name="Quinn Quality")
    return out


async def test_quarantine_alarm_disposition_and_exposure_kept(site: Site) -> None:
    # Fridge A: 20 minutes in range, 40 minutes at 9.5 °C (a failed compressor), then recovery.
    values = [5.0] * 20 + [9.5] * 40 + [5.0] * 30
    await site.send(readings(SENSOR[FRIDGE_A], T0, values))
    users = await tokens(site.url)
    a1 = site.lots["a1"]
    async with app_client(site.url) as client:
        await _alarm_list(client, users)
        before = await _exposure(client, users, a1)
        assert before["status"] == "quarantined"
        await _dispose(client, users, a1)
        after = await _exposure(client, users, a1)
    assert after["status"] == "released"
    # A released lot keeps its exposure: same time out of range, same excursions, budget spent.
    for key in ("time_out_of_range", "budget_left", "excursions", "mkt", "trace"):
        assert after[key] == before[key], key


async def _alarm_list(client: httpx.AsyncClient, users: dict[str, dict[str, str]]) -> None:
    r = await client.get("/v1/alerts?unacknowledged=true", headers=users["vera"])
    assert r.status_code == 200
    alarms = r.json()
    assert {a["kind"] for a in alarms} >= {"excursion_opened", "quarantine"}
    quarantine = next(a for a in alarms if a["kind"] == "quarantine")
    assert quarantine["severity"] == "critical"
    denied = await client.post(
        f"/v1/alerts/{quarantine['alert_id']}/acknowledge", json={}, headers=users["vera"]
    )
    assert denied.status_code == 403
    ack = await client.post(
        f"/v1/alerts/{quarantine['alert_id']}/acknowledge",
        json={"note": "moving stock to fridge B"},
        headers=users["otto"],
    )
    assert ack.status_code == 200
    assert ack.json()["acknowledged_by"] == "otto"
    r = await client.get("/v1/alerts?unacknowledged=true", headers=users["vera"])
    assert quarantine["alert_id"] not in {a["alert_id"] for a in r.json()}
    r = await client.post("/v1/alerts/999999/acknowledge", json={}, headers=users["otto"])
    assert r.status_code == 404
    excursions = (await client.get("/v1/excursions?open=false", headers=users["vera"])).json()
    assert len(excursions) == 1
    assert excursions[0]["level"] == "action"
    assert {lot["status"] for lot in excursions[0]["lots"]} == {"quarantined"}


async def _exposure(
    client: httpx.AsyncClient, users: dict[str, dict[str, str]], lot: int
) -> dict[str, object]:
    at = (T0 + 90 * M).isoformat()
    r = await client.get(
        f"/v1/lots/{lot}/exposure", params={"at": at, "bucket": "PT30M"}, headers=users["vera"]
    )
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    assert body["time_out_of_range"] == "PT40M"
    # Budget 2 h, minus 40 min out of range, minus the 2 minutes at the unmonitored dock
    # (unknown time is spent too): 78 minutes left.
    assert body["time_unknown"] == "PT2M"
    assert body["budget_left"] == "PT1H18M"
    assert body["budget_exhausted"] is False
    assert body["mkt"] is not None
    assert 5.0 < float(str(body["mkt"])) < 9.5
    assert isinstance(body["excursions"], list)
    assert [x["level"] for x in body["excursions"]] == ["action"]
    return body


async def _dispose(client: httpx.AsyncClient, users: dict[str, dict[str, str]], lot: int) -> None:
    body = {
        "decision": "release",
        "reason": "stability data: 40 min at 9.5 °C is within the product's excursion allowance",
        "signature": signature("quinn", "released"),
    }
    denied = await client.post(f"/v1/lots/{lot}/disposition", json=body, headers=users["otto"])
    assert denied.status_code == 403
    r = await client.post(f"/v1/lots/{lot}/disposition", json=body, headers=users["quinn"])
    assert r.status_code == 200, r.text
    entries = await client.get(f"/v1/ledger/entries?lot_id={lot}", headers=users["vera"])
    assert entries.status_code == 200
    moves = [(e["movement"], e["actor"], e["reference"], e["signature_meaning"])
             for e in entries.json() if e["movement"] in ("quarantine", "release")]  # fmt: skip
    assert moves[0][:2] == ("quarantine", "coldtrace:coldchain")
    assert str(moves[0][2]).startswith("excursion:")
    assert moves[1:] == [("release", "quinn", None, "released: approved for use")]
    [signed] = r.json()["signature"]["entry_ids"]
    assert [e["signature_ids"] for e in entries.json() if e["entry_id"] == signed] == [
        [r.json()["signature"]["signature_id"]]
    ]
    assert r.json()["signature"]["printed_name"] == "Quinn Quality"
