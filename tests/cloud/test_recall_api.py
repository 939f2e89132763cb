"""Recall through the HTTP API: where every unit of a lot is, then everything on recall hold."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg
import pytest

from cloud.auth.model import Role
from cloud.ledger.chain import verify
from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import NewUnit, ensure_lot, post, register_units
from tests.support.ledger_api import Api, api
from tests.support.ledger_seed import DOCK, FRIDGE, GTIN_A, GTIN_B
from tests.support.people import give_password, signature

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 3, 7, 0, tzinfo=UTC)
AVAIL = Status.AVAILABLE
PALLET = "urn:epc:id:sscc:0614141.1234567890"
UNITS = [f"urn:epc:id:sgtin:0614141.012345.{n}" for n in range(1, 5)]


@pytest.fixture
async def client(timescale_url: str) -> AsyncIterator[Api]:
    async with api(timescale_url) as a:
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            await _history(conn)
            await conn.commit()
        yield a


async def _history(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    lot = await ensure_lot(conn, gtin=GTIN_A, lot_number="R1", expiry=None)
    other = await ensure_lot(conn, gtin=GTIN_B, lot_number="X9", expiry=None)
    await register_units(conn, [NewUnit(PALLET, "sscc", None, None)])
    await register_units(conn, [NewUnit(u, "sgtin", lot, PALLET) for u in UNITS])
    dock, fridge = Place(DOCK, AVAIL), Place(FRIDGE, AVAIL)
    t1 = T0 + timedelta(hours=1)
    await post(
        conn,
        [
            *(Draft(Movement.RECEIVE, lot, 1, T0, "dock", to=dock, epc_uri=u) for u in UNITS),
            Draft(Movement.RECEIVE, lot, 20, T0, "dock", to=dock),
            Draft(Movement.RECEIVE, other, 5, T0, "dock", to=dock),
            *(
                Draft(Movement.PUT_AWAY, lot, 1, t1, "op", frm=dock, to=fridge, epc_uri=u)
                for u in UNITS[:3]
            ),
            Draft(
                Movement.ISSUE, lot, 1, t1, "op", frm=fridge, epc_uri=UNITS[0],
                counterparty="St. Mary's Hospital pharmacy", reference="SO-881",
            ),
            Draft(
                Movement.ISSUE, lot, 8, t1, "op", frm=dock, counterparty="City Pharmacy",
                reference="SO-882",
            ),
        ],
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO sensors (sensor_id, location_id) VALUES ('t-fridge', %s)", (FRIDGE,)
    )
    await conn.execute(
        "INSERT INTO excursions (location_id, sensor_id, kind, level, started_at, ended_at,"
        " peak_value) VALUES (%s, 't-fridge', 'high', 'action', %s, %s, 11.5)",
        (FRIDGE, t1 + timedelta(minutes=30), t1 + timedelta(minutes=75)),
    )
    await conn.execute(
        "INSERT INTO readings (time, sensor_id, value, quality, received_at, gateway_id, boot_id,"
        " seq) VALUES (%s, 't-fridge', 5.0, 'good', %s, 'gw', %s, 1)",
        (t1, t1, UUID(int=1)),
    )


async def test_recall_view_lists_units_places_and_customers(client: Api) -> None:
    response = await client.client.get(
        f"/v1/recalls/lot/{GTIN_A}/R1", headers=client.as_(Role.VIEWER)
    )
    assert response.status_code == 200
    body = response.json()
    places = {(h["location_id"], h["status"]): h["quantity"] for h in body["on_hand"]}
    assert places == {(DOCK, "available"): 13, (FRIDGE, "available"): 2}
    where = {u["epc_uri"]: u["location_id"] for u in body["units"]}
    assert where == {UNITS[0]: None, UNITS[1]: FRIDGE, UNITS[2]: FRIDGE, UNITS[3]: DOCK}
    assert [(c["epc_uri"], c["content_locations"]) for c in body["containers"]] == [
        (PALLET, [DOCK, FRIDGE])
    ]
    assert [(i["counterparty"], i["quantity"]) for i in body["issued"]] == [
        ("St. Mary's Hospital pharmacy", 1),
        ("City Pharmacy", 8),
    ]
    assert [e["peak"] for e in body["excursions"]] == [11.5]
    assert body["exposure"] is not None
    assert body["exposure"]["excursions"] == 1
    assert body["answered_in_ms"] < 1000


async def test_recall_hold_takes_everything_once_and_only_for_qa(
    client: Api, timescale_url: str
) -> None:
    url = f"/v1/recalls/lot/{GTIN_A}/R1"
    await give_password(timescale_url, "qa-1")
    body = {"reason": "supplier recall notice 2026-17", "reference": "RC-17",
            "signature": signature("qa-1", "approved")}  # fmt: skip
    refused = await client.client.post(url, json=body, headers=client.as_(Role.OPERATOR))
    assert refused.status_code == 403
    held = await client.client.post(url, json=body, headers=client.as_(Role.QA))
    assert held.status_code == 200
    result = held.json()
    assert result["entries"] == 2
    assert len(result["signature"]["entry_ids"]) == 2
    assert [s["signature_id"] for s in result["recall"]["signatures"]] == [
        result["signature"]["signature_id"]
    ]
    assert {h["status"] for h in result["recall"]["on_hand"]} == {"recalled"}
    assert result["recall"]["status"] == "recalled"
    assert {u["status"] for u in result["recall"]["units"] if u["location_id"]} == {"recalled"}
    again = await client.client.post(url, json=body, headers=client.as_(Role.QA))
    assert again.json()["entries"] == 0
    other = await client.client.get(f"/v1/recalls/lot/{GTIN_B}/X9", headers=client.as_(Role.VIEWER))
    assert {h["status"] for h in other.json()["on_hand"]} == {"available"}
    missing = await client.client.get(
        f"/v1/recalls/lot/{GTIN_A}/NOPE", headers=client.as_(Role.VIEWER)
    )
    assert missing.status_code == 404
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        assert (await verify(conn)).ok
        cur = await conn.execute("SELECT actor, action, reason FROM audit_log")
        assert await cur.fetchall() == [("qa-1", "recall.hold", body["reason"])] * 2
