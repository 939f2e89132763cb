"""``GET /v1/sites/{id}/door-list`` for the gateways: their own site only, with an ETag."""

from __future__ import annotations

import psycopg
import pytest

from cloud.receiving.asn import AsnIn
from cloud.receiving.store import create_asn
from cloud.transfers.store import TransferIn, create_transfer
from tests.support.cloud_ingest import app_client, create_gateway
from tests.support.ledger_seed import GTIN_A, seed
from tests.support.transfers_seed import Doors, add_second_site, stock_in, supplier_asn

pytestmark = pytest.mark.integration


async def test_the_gateway_of_the_site_reads_its_door_list_with_an_etag(
    timescale_url: str,
) -> None:
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        await seed(conn)
        await add_second_site(conn)
        await create_asn(conn, AsnIn.model_validate(supplier_asn()))
        await conn.commit()
        await stock_in(conn, Doors(conn))
    own = await create_gateway(timescale_url, "gw-1", "site-1")
    other = await create_gateway(timescale_url, "gw-2", "site-2")
    url = "/v1/sites/site-1/door-list"
    async with app_client(timescale_url) as client:
        first = await client.get(url, headers=own.headers)
        assert first.status_code == 200, first.text
        assert first.json()["ordered_gtins"] == []  # nothing loading yet
        etag = first.headers["ETag"]
        same = await client.get(url, headers=own.headers | {"If-None-Match": etag})
        assert same.status_code == 304
        assert same.headers["ETag"] == etag
        refused = await client.get(url, headers=other.headers)
        assert refused.status_code == 403
        assert "its own site" in refused.json()["detail"]
        assert (await client.get(url, headers={"Authorization": "Bearer nope"})).status_code == 401
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            order = {
                "reference": "TR-E", "from_site": "site-1", "to_site": None, "customer": "H",
                "lines": [{"gtin": GTIN_A, "quantity": 1}], "min_remaining_days": 0,
            }  # fmt: skip
            await create_transfer(conn, TransferIn.model_validate(order))
            await conn.commit()
        changed = await client.get(url, headers=own.headers | {"If-None-Match": etag})
        assert changed.status_code == 200
        assert changed.json()["ordered_gtins"] == [GTIN_A]
        assert changed.headers["ETag"] != etag
