"""ASNs through the HTTP API: JSON, CSV and X12 856 in, clear 4xx answers, receipts out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import UUID

import psycopg
import pytest

from cloud.auth.model import Role
from cloud.receiving.step import handle_passage
from protocols.gs1.epc import encode_sscc96
from protocols.records import Direction, PortalPassage
from tests.cloud.test_receiving_imports import CSV, DESADV, X12
from tests.support.ledger_api import Api, api
from tests.support.ledger_seed import DOCK, GTIN_A

pytestmark = pytest.mark.integration

PALLET = "106141412345678908"


@pytest.fixture
async def client(timescale_url: str) -> AsyncIterator[Api]:
    async with api(timescale_url) as a:
        yield a


def asn(reference: str = "PO-9", sscc: str = PALLET) -> dict[str, object]:
    return {
        "site_id": "site-1",
        "reference": reference,
        "containers": [
            {"sscc": sscc, "contents": [{"gtin": GTIN_A, "lot": "L9", "serials": ["5", "6"]}]}
        ],
    }


async def test_post_asn_and_its_refusals(client: Api) -> None:
    op = client.as_(Role.OPERATOR) | {"X-Coldtrace-Reason": "supplier EDI down, keyed in"}
    created = await client.client.post("/v1/asns", json=asn(), headers=op)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["reference"], body["status"], body["items"], body["received"]) == (
        "PO-9", "open", 3, 0,
    )  # fmt: skip
    duplicate = await client.client.post("/v1/asns", json=asn(), headers=op)
    assert duplicate.status_code == 409
    clash = await client.client.post("/v1/asns", json=asn("PO-10"), headers=op)
    assert clash.status_code == 409
    assert "already announced" in clash.json()["detail"]
    bad_digit = await client.client.post(
        "/v1/asns", json=asn("PO-11", PALLET[:-1] + "0"), headers=op
    )
    assert bad_digit.status_code == 422
    assert "check digit" in bad_digit.text
    unknown_site = await client.client.post(
        "/v1/asns", json=asn("PO-12", "106141410000000019") | {"site_id": "nowhere"}, headers=op
    )
    assert unknown_site.status_code == 422
    assert "unknown site" in unknown_site.json()["detail"]
    viewer = await client.client.post(
        "/v1/asns", json=asn("PO-13"), headers=client.as_(Role.VIEWER)
    )
    assert viewer.status_code == 403
    listed = await client.client.get("/v1/asns?status=open", headers=client.as_(Role.VIEWER))
    assert [a["reference"] for a in listed.json()] == ["PO-9"]


async def test_imports_and_receipts(client: Api, timescale_url: str) -> None:
    op = client.as_(Role.OPERATOR)
    csv = await client.client.post(
        "/v1/asns/import", params={"format": "csv"}, content=CSV.encode(), headers=op
    )
    assert csv.status_code == 201, csv.text
    assert [a["reference"] for a in csv.json()] == ["PO-1", "PO-2"]
    x12 = await client.client.post(
        "/v1/asns/import",
        params={"format": "x12-856"},
        content=X12.replace("106141412345678908", "106141410000000019").encode(),
        headers=op,
    )
    assert x12.status_code == 409  # the case SSCC of the X12 document is already on PO-1
    desadv = await client.client.post(
        "/v1/asns/import",
        params={"format": "desadv"},
        content=DESADV.replace("DES-42", "DES-43")
        .replace(PALLET, "106141410000000019")
        .replace("006141410000000012", "006141410000000029")
        .replace("GIN+BN+1+2+3", "GIN+BN+7+8+9")
        .encode(),
        headers=op,
    )
    assert desadv.status_code == 201, desadv.text
    assert desadv.json()[0]["items"] == 6
    broken = await client.client.post(
        "/v1/asns/import", params={"format": "csv"}, content=b"site_id\nx\n", headers=op
    )
    assert broken.status_code == 422
    assert "missing columns" in broken.json()["detail"]
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        at = datetime(2026, 3, 2, 6, tzinfo=UTC)
        passage = PortalPassage(
            passage_id="p1", door_id=DOCK, reader_id="r1", direction=Direction.INBOUND,
            started_at=at, ended_at=at, epcs=(encode_sscc96(PALLET, 7),),
        )  # fmt: skip
        await handle_passage(conn, "gw-1", UUID(int=3), 1, passage)
        await conn.commit()
        cur = await conn.execute("SELECT actor, action, reason FROM audit_log ORDER BY audit_id")
        assert [row[1] for row in await cur.fetchall()] == ["asn.create"] * 3
    receipts = await client.client.get(
        "/v1/receipts", params={"asn_id": csv.json()[0]["asn_id"]}, headers=client.as_(Role.VIEWER)
    )
    [receipt] = receipts.json()
    assert (receipt["outcome"], receipt["received"]) == ("complete", 14)
