"""The ledger HTTP API: entries, balances, manual movements, QA disposition, verification."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cloud.auth.model import Role
from cloud.ledger.service import ensure_lot, quarantine_at_location
from tests.support.ledger_api import Api, api
from tests.support.ledger_seed import DOCK, FRIDGE, GTIN_A
from tests.support.people import give_password, signature

pytestmark = pytest.mark.integration


@pytest.fixture
async def ledger(timescale_url: str) -> AsyncIterator[tuple[Api, int]]:
    async with api(timescale_url) as a:
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            lot = await ensure_lot(conn, gtin=GTIN_A, lot_number="API1", expiry=None)
            await conn.commit()
        yield a, lot


def movement(lot: int, kind: str, **sides: object) -> dict[str, object]:
    return {"movement": kind, "lot_id": lot, "reason": "manual booking", **sides}


async def test_manual_movements_balances_and_entries(ledger: tuple[Api, int]) -> None:
    client, lot = ledger
    op = client.as_(Role.OPERATOR)
    received = await client.client.post(
        "/v1/ledger/movements",
        json=movement(lot, "receive", quantity=10, to_location=DOCK, to_status="available"),
        headers=op,
    )
    assert received.status_code == 201, received.text
    assert received.json()["actor"] == "operator-1"
    assert len(received.json()["entry_hash"]) == 64
    moved = await client.client.post(
        "/v1/ledger/movements",
        json=movement(lot, "put_away", quantity=4, from_location=DOCK, from_status="available",
                      to_location=FRIDGE, to_status="available"),
        headers=op,
    )  # fmt: skip
    assert moved.status_code == 201
    too_much = await client.client.post(
        "/v1/ledger/movements",
        json=movement(lot, "issue", quantity=7, from_location=DOCK, from_status="available",
                      counterparty="Ward 7"),
        headers=op,
    )  # fmt: skip
    assert too_much.status_code == 409
    assert "has 6 available" in too_much.json()["detail"]
    wrong = await client.client.post(
        "/v1/ledger/movements",
        json=movement(lot, "put_away", quantity=1, from_location=DOCK, from_status="available",
                      to_location=DOCK, to_status="available"),
        headers=op,
    )  # fmt: skip
    assert wrong.status_code == 422
    unknown = await client.client.post(
        "/v1/ledger/movements",
        json=movement(999, "receive", quantity=1, to_location=DOCK, to_status="available"),
        headers=op,
    )
    assert unknown.status_code == 404
    viewer = client.as_(Role.VIEWER)
    balances = await client.client.get(
        "/v1/ledger/balances", params={"lot_id": lot}, headers=viewer
    )
    assert [(b["location_id"], b["quantity"]) for b in balances.json()] == [(DOCK, 6), (FRIDGE, 4)]
    entries = await client.client.get(
        "/v1/ledger/entries", params={"location_id": FRIDGE}, headers=viewer
    )
    assert [e["movement"] for e in entries.json()] == ["put_away"]
    verify = await client.client.get("/v1/ledger/verify", headers=client.as_(Role.ADMIN))
    assert verify.json()["ok"] is True
    assert verify.json()["entries"] == 2
    not_admin = await client.client.get("/v1/ledger/verify", headers=client.as_(Role.QA))
    assert not_admin.status_code == 403


async def test_only_qa_disposes_and_only_quarantined_stock(
    ledger: tuple[Api, int], timescale_url: str
) -> None:
    client, lot = ledger
    await client.client.post(
        "/v1/ledger/movements",
        json=movement(lot, "receive", quantity=5, to_location=FRIDGE, to_status="available"),
        headers=client.as_(Role.OPERATOR),
    )
    await give_password(timescale_url, "qa-1")
    body = {"decision": "reject", "reason": "72 h above 8 °C",
            "signature": signature("qa-1", "rejected")}  # fmt: skip
    url = f"/v1/lots/{lot}/disposition"
    not_quarantined = await client.client.post(url, json=body, headers=client.as_(Role.QA))
    assert not_quarantined.status_code == 409
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        await quarantine_at_location(
            conn, location_id=FRIDGE, effective_at=datetime.now(UTC), actor="rules",
            reason="hot", reference="ex-5",
        )  # fmt: skip
        await conn.commit()
    operator = await client.client.post(url, json=body, headers=client.as_(Role.OPERATOR))
    assert operator.status_code == 403
    rejected = await client.client.post(url, json=body, headers=client.as_(Role.QA))
    assert rejected.status_code == 200
    assert [(b["status"], b["quantity"]) for b in rejected.json()["balances"]] == [("rejected", 5)]
    assert rejected.json()["signature"]["meaning"] == "rejected"
    no_signature = {k: v for k, v in body.items() if k != "signature"}
    unsigned = await client.client.post(url, json=no_signature, headers=client.as_(Role.QA))
    assert unsigned.status_code == 422


async def test_issuing_an_expired_lot_is_refused(
    ledger: tuple[Api, int], timescale_url: str
) -> None:
    client, lot = ledger
    op = client.as_(Role.OPERATOR)
    await client.client.post(
        "/v1/ledger/movements",
        json=movement(lot, "receive", quantity=3, to_location=DOCK, to_status="available"),
        headers=op,
    )
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        await conn.execute("UPDATE lots SET expiry = '2026-01-31' WHERE lot_id = %s", (lot,))
        await conn.commit()
    issue = movement(lot, "issue", quantity=1, from_location=DOCK, from_status="available")
    on_the_day = await client.client.post(
        "/v1/ledger/movements", json=issue | {"effective_at": "2026-01-31T23:00:00Z"}, headers=op
    )
    assert on_the_day.status_code == 201
    after = await client.client.post(
        "/v1/ledger/movements", json=issue | {"effective_at": "2026-02-01T00:00:00Z"}, headers=op
    )
    assert after.status_code == 422
    assert "expired on 2026-01-31" in after.json()["detail"]


async def test_a_persons_entry_may_not_be_dated_ahead_of_the_service(
    ledger: tuple[Api, int], timescale_url: str
) -> None:
    """A ledger records what happened: an entry dated 9999 would sort after everything ever
    booked. A small skew (the person's clock) is allowed, as for every time the service is sent."""
    client, lot = ledger
    op = client.as_(Role.OPERATOR)
    receive = movement(lot, "receive", quantity=2, to_location=DOCK, to_status="available")
    ahead = await client.client.post(
        "/v1/ledger/movements", json=receive | {"effective_at": "9999-12-30T00:00:00Z"}, headers=op
    )
    assert ahead.status_code == 422
    assert "effective_at is" in ahead.json()["detail"]
    assert "ahead of the service's clock" in ahead.json()["detail"]
    soon = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
    within = await client.client.post(
        "/v1/ledger/movements", json=receive | {"effective_at": soon}, headers=op
    )
    assert within.status_code == 201, within.text
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        await quarantine_at_location(
            conn, location_id=DOCK, effective_at=datetime.now(UTC), actor="rules",
            reason="hot", reference="ex-6",
        )  # fmt: skip
        await conn.commit()
    await give_password(timescale_url, "qa-1")
    body = {"decision": "release", "reason": "stable", "effective_at": "9999-12-30T00:00:00Z",
            "signature": signature("qa-1", "released")}  # fmt: skip
    url = f"/v1/lots/{lot}/disposition"
    refused = await client.client.post(url, json=body, headers=client.as_(Role.QA))
    assert refused.status_code == 422
    entries = await client.client.get(f"/v1/ledger/entries?lot_id={lot}", headers=op)
    assert entries.status_code == 200
    assert [e["movement"] for e in entries.json()] == ["receive", "quarantine"]
