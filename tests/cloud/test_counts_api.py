"""Cycle counts through the HTTP API: differences from a read, then adjustments on confirmation."""

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
from protocols.gs1.epc import encode_sgtin96
from tests.support.ledger_api import Api, api
from tests.support.ledger_seed import FRIDGE, FRIDGE_2, GTIN_A, GTIN_B
from tests.support.people import give_password, signature

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 5, 7, 0, tzinfo=UTC)
AVAIL = Status.AVAILABLE


def uri(n: int) -> str:
    return f"urn:epc:id:sgtin:0614141.012345.{n}"


def hexa(n: int, gtin: str = GTIN_A) -> str:
    return encode_sgtin96(gtin, n, 7)


@pytest.fixture
async def counting(timescale_url: str) -> AsyncIterator[tuple[Api, int]]:
    async with api(timescale_url) as a:
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            a_lot = await ensure_lot(conn, gtin=GTIN_A, lot_number="C1", expiry=None)
            b_lot = await ensure_lot(conn, gtin=GTIN_B, lot_number="C2", expiry=None)
            await register_units(
                conn,
                [
                    NewUnit(uri(n), "sgtin", a_lot, None, f"(01){GTIN_A}(21){n}")
                    for n in range(1, 7)
                ],
            )
            here, there = Place(FRIDGE, AVAIL), Place(FRIDGE_2, AVAIL)
            await post(
                conn,
                [
                    *(
                        Draft(Movement.RECEIVE, a_lot, 1, T0, "t", to=here, epc_uri=uri(n))
                        for n in range(1, 5)
                    ),
                    Draft(Movement.RECEIVE, a_lot, 1, T0, "t", to=there, epc_uri=uri(5)),
                    Draft(Movement.RECEIVE, a_lot, 1, T0, "t", to=here, epc_uri=uri(6)),
                    Draft(Movement.ISSUE, a_lot, 1, T0, "t", frm=here, epc_uri=uri(6)),
                    Draft(Movement.RECEIVE, b_lot, 10, T0, "t", to=here),
                ],
            )
            await conn.execute(
                "INSERT INTO devices (device_id, device_type, location_id)"
                " VALUES ('shelf-reader', 'llrp_reader', %s)",
                (FRIDGE_2,),
            )
            await conn.execute(
                "INSERT INTO tag_reads (time, last_seen, reader_id, antenna, epc, read_count,"
                " received_at, gateway_id, boot_id, seq)"
                " VALUES (%s, %s, 'shelf-reader', 1, %s, 3, %s, 'gw', %s, 1)",
                (T0, T0, hexa(5), T0, UUID(int=1)),
            )
            await conn.commit()
        yield a, b_lot


async def test_a_count_finds_the_differences_and_confirmation_books_them(
    counting: tuple[Api, int], timescale_url: str
) -> None:
    client, b_lot = counting
    body = {
        "location_id": FRIDGE,
        "epcs": [
            hexa(1),
            hexa(2),
            hexa(3),
            hexa(5),
            hexa(6),
            hexa(9, "09506000134352"),
            "E2801160",
        ],
        "counted": [{"lot_id": b_lot, "quantity": 8}],
    }
    taken = await client.client.post("/v1/counts", json=body, headers=client.as_(Role.OPERATOR))
    assert taken.status_code == 201, taken.text
    result = taken.json()
    assert result["matched"] == [uri(1), uri(2), uri(3)]
    assert [m["epc_uri"] for m in result["missing"]] == [uri(4)]
    assert [(f["epc_uri"], f["ledger_place"]) for f in result["found"]] == [
        (uri(5), FRIDGE_2),
        (uri(6), None),
    ]
    assert result["unknown"] == ["(01)09506000134352(21)9"]
    assert result["undecodable"] == ["E2801160"]
    assert [(b["on_record"], b["difference"]) for b in result["bulk"]] == [(10, -2)]
    assert result["differences"] == 4

    url = f"/v1/counts/{result['count_id']}/confirm"
    unsigned = await client.client.post(
        url, json={"reason": "monthly count"}, headers=client.as_(Role.OPERATOR)
    )
    assert unsigned.status_code == 422  # confirming a count decides stock: it is signed
    await give_password(timescale_url, "operator-1", full_name="Olga Operator")
    signed = {"reason": "monthly count", "signature": signature("operator-1", "reviewed")}
    confirmed = await client.client.post(url, json=signed, headers=client.as_(Role.OPERATOR))
    assert confirmed.status_code == 200, confirmed.text
    out = confirmed.json()
    assert (out["count_id"], out["entries"]) == (result["count_id"], 4)
    assert out["signature"]["subject"] == f"count:{result['count_id']}"
    assert len(out["signature"]["entry_ids"]) == 4
    assert out["signature"]["manifestation"].startswith("Olga Operator (operator-1), ")
    again = await client.client.post(url, json=signed, headers=client.as_(Role.OPERATOR))
    assert again.status_code == 422
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute(
            "SELECT lot_id, location_id, status, quantity FROM balances WHERE quantity > 0"
            " ORDER BY 1, 2, 3"
        )
        rows = [(loc, st, q) for _, loc, st, q in await cur.fetchall()]
        assert rows == [
            (FRIDGE, "available", 4),
            (FRIDGE, "quarantined", 1),
            (FRIDGE, "available", 8),
        ]
        cur = await conn.execute(
            "SELECT location_id, status FROM units WHERE epc_uri = %s", (uri(6),)
        )
        assert await cur.fetchone() == (FRIDGE, "quarantined")
        assert (await verify(conn)).ok
        cur = await conn.execute("SELECT actor, action FROM audit_log ORDER BY audit_id")
        assert await cur.fetchall() == [
            ("operator-1", "count.take"),
            ("operator-1", "count.confirm"),
        ]


async def test_a_count_from_tag_reads_over_a_window(counting: tuple[Api, int]) -> None:
    client, _ = counting
    body = {
        "location_id": FRIDGE_2,
        "window": {
            "start": (T0 - timedelta(minutes=5)).isoformat(),
            "end": (T0 + timedelta(minutes=5)).isoformat(),
        },
    }
    taken = await client.client.post("/v1/counts", json=body, headers=client.as_(Role.OPERATOR))
    assert taken.json()["matched"] == [uri(5)]
    assert taken.json()["differences"] == 0
    nothing = await client.client.post(
        "/v1/counts", json={"location_id": FRIDGE}, headers=client.as_(Role.OPERATOR)
    )
    assert nothing.status_code == 422
    unknown = await client.client.post(
        "/v1/counts",
        json={"location_id": "nowhere", "epcs": [hexa(1)]},
        headers=client.as_(Role.OPERATOR),
    )
    assert unknown.status_code == 404
