"""The master-data HTTP API against the real database: roles, validation, conflicts, audit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from cloud.auth.model import Role
from tests.support.ledger_api import Api, api
from tests.support.ledger_seed import FRIDGE, FRIDGE_2, GTIN_A, SITE

pytestmark = pytest.mark.integration

READERS = (Role.VIEWER, Role.OPERATOR, Role.QA)
GTIN_NEW = "09506000134352"  # valid check digit, not seeded
WHY = {"X-Coldtrace-Reason": "commissioning"}


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[tuple[Api, str]]:
    async with api(database_url) as a:
        yield a, database_url


async def audit_rows(url: str, subject: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT actor, action, reason, detail FROM audit_log WHERE subject = %s"
            " ORDER BY audit_id",
            (subject,),
        )
        return list(await cur.fetchall())


async def test_sites_are_written_by_admin_only_and_audited(client: tuple[Api, str]) -> None:
    a, url = client
    body = {"name": "Central pharmacy", "timezone": "Europe/Paris"}
    for role in READERS:
        refused = await a.client.put("/v1/sites/central", json=body, headers=a.as_(role))
        assert refused.status_code == 403, role
    assert (await a.client.put("/v1/sites/central", json=body)).status_code == 401
    admin = a.as_(Role.ADMIN) | WHY
    created = await a.client.put("/v1/sites/central", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json() == {"site_id": "central", **body}
    renamed = await a.client.put(
        "/v1/sites/central", json={"name": "Central", "timezone": "UTC"}, headers=admin
    )
    assert renamed.status_code == 200
    bad = await a.client.put(
        "/v1/sites/central", json={"name": "x", "timezone": "CEST"}, headers=admin
    )
    assert bad.status_code == 422
    assert "IANA" in bad.text
    for role in READERS:
        listed = await a.client.get("/v1/sites", headers=a.as_(role))
        assert listed.status_code == 200
        assert {s["site_id"]: s["timezone"] for s in listed.json()} == {
            "central": "UTC", SITE: "UTC"
        }  # fmt: skip
    rows = await audit_rows(url, "site:central")
    assert [(r[0], r[1], r[2]) for r in rows] == [("admin-1", "site.put", "commissioning")] * 2
    assert rows[0][3]["before"] is None
    assert rows[1][3]["before"]["timezone"] == "Europe/Paris"
    assert rows[1][3]["after"]["timezone"] == "UTC"


async def test_location_hierarchy_is_checked(timescale_url: str) -> None:
    async with api(timescale_url) as a:
        admin = a.as_(Role.ADMIN)

        async def put(loc: str, **fields: object) -> tuple[int, str]:
            body = {"site_id": SITE, "kind": "zone", "name": loc, **fields}
            r = await a.client.put(f"/v1/locations/{loc}", json=body, headers=admin)
            return r.status_code, r.text

        assert (await put("cold-zone"))[0] == 201
        assert (await put("shelf-1", kind="shelf", parent_id="cold-zone"))[0] == 201
        fridge = await put("fridge-9", kind="fridge", parent_id="cold-zone",
                           profile_id="std-refrigerated")  # fmt: skip
        assert fridge[0] == 201
        # the zone under its own shelf, or under itself: a cycle
        assert (await put("cold-zone", parent_id="shelf-1"))[0] == 409
        assert (await put("cold-zone", parent_id="cold-zone"))[0] == 409
        await a.client.put("/v1/sites/other", json={"name": "Other"}, headers=admin)
        other = await put("far-shelf", site_id="other", kind="shelf", parent_id="cold-zone")
        assert other[0] == 422
        assert "is in site" in other[1]
        # a location holding others cannot change site alone
        assert (await put("cold-zone", site_id="other"))[0] == 409
        assert (await put("fridge-9", kind="fridge", profile_id="no-such"))[0] == 422
        assert (await put("x", site_id="nowhere"))[0] == 422
        assert (await put("x", kind="cupboard"))[0] == 422
        assert (await put("x", parent_id="missing"))[0] == 422
        assert (await put("x", name="tab\there"))[0] == 422
        moved = await put("fridge-9", kind="fridge", parent_id=None, profile_id="std-frozen")
        assert moved[0] == 200
        listed = await a.client.get(
            "/v1/locations", params={"site_id": SITE}, headers=a.as_(Role.VIEWER)
        )
        by_id = {loc["location_id"]: loc for loc in listed.json()}
        assert by_id["shelf-1"]["parent_id"] == "cold-zone"
        assert by_id["fridge-9"]["profile_id"] == "std-frozen"
        assert by_id["fridge-9"]["parent_id"] is None
        assert "x" not in by_id
        assert FRIDGE in by_id
        refused = await a.client.put(
            "/v1/locations/y", json={"site_id": SITE, "kind": "zone", "name": "y"},
            headers=a.as_(Role.OPERATOR),
        )  # fmt: skip
        assert refused.status_code == 403


async def test_products_need_a_gtin_14_a_profile_and_a_fixed_budget(
    client: tuple[Api, str],
) -> None:
    a, url = client
    admin = a.as_(Role.ADMIN)
    body = {"name": "Hepatitis B vaccine", "profile_id": "std-refrigerated",
            "stability_budget": "PT12H"}  # fmt: skip
    created = await a.client.put(f"/v1/products/{GTIN_NEW}", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["stability_budget"] == "PT12H"
    longer = await a.client.put(
        f"/v1/products/{GTIN_NEW}", json=body | {"stability_budget": "P2DT6H"}, headers=admin
    )
    assert longer.status_code == 200
    for gtin, change in (
        ("09506000134353", {}),  # wrong check digit
        ("9506000134352", {}),  # 13 digits
        (GTIN_NEW, {"stability_budget": "P1M"}),  # a month has no fixed length
        (GTIN_NEW, {"stability_budget": 3600}),
        (GTIN_NEW, {"stability_budget": "-PT1H"}),
        (GTIN_NEW, {"profile_id": "no-such"}),
    ):
        r = await a.client.put(f"/v1/products/{gtin}", json=body | change, headers=admin)
        assert r.status_code == 422, (gtin, change, r.text)
    refused = await a.client.put(f"/v1/products/{GTIN_NEW}", json=body, headers=a.as_(Role.QA))
    assert refused.status_code == 403
    listed = await a.client.get("/v1/products", headers=a.as_(Role.VIEWER))
    budgets = {p["gtin"]: p["stability_budget"] for p in listed.json()}
    assert budgets[GTIN_NEW] == "P2DT6H"
    assert GTIN_A in budgets
    rows = await audit_rows(url, f"product:{GTIN_NEW}")
    assert [r[1] for r in rows] == ["product.put", "product.put"]
    assert rows[1][3]["before"]["stability_budget"] == "PT12H"


async def test_lots_are_created_once_and_status_stays_with_the_ledger(
    timescale_url: str,
) -> None:
    async with api(timescale_url) as a:
        admin = a.as_(Role.ADMIN) | WHY
        body = {"gtin": GTIN_A, "lot_number": "L-2026-01", "expiry": "2027-03-31"}
        created = await a.client.post("/v1/lots", json=body, headers=admin)
        assert created.status_code == 201, created.text
        lot = created.json()
        assert (lot["gtin"], lot["status"], lot["expiry"]) == (GTIN_A, "available", "2027-03-31")
        again = await a.client.post("/v1/lots", json=body, headers=admin)
        assert again.status_code == 409
        assert "already exists" in again.text
        with_status = await a.client.post(
            "/v1/lots", json=body | {"lot_number": "L2", "status": "released"}, headers=admin
        )
        assert with_status.status_code == 422
        unknown = await a.client.post(
            "/v1/lots", json=body | {"gtin": GTIN_NEW}, headers=admin
        )  # fmt: skip
        assert unknown.status_code == 422
        assert "no product" in unknown.text
        bad = await a.client.post("/v1/lots", json=body | {"expiry": "2027-02-30"}, headers=admin)
        assert bad.status_code == 422
        long = await a.client.post("/v1/lots", json=body | {"lot_number": "L" * 21}, headers=admin)
        assert long.status_code == 422
        refused = await a.client.post("/v1/lots", json=body, headers=a.as_(Role.OPERATOR))
        assert refused.status_code == 403
        viewer = a.as_(Role.VIEWER)
        by_gtin = await a.client.get("/v1/lots", params={"gtin": GTIN_A}, headers=viewer)
        assert [x["lot_number"] for x in by_gtin.json()] == ["L-2026-01"]
        held = await a.client.get("/v1/lots", params={"status": "quarantined"}, headers=viewer)
        assert held.json() == []
        wrong = await a.client.get("/v1/lots", params={"status": "lost"}, headers=viewer)
        assert wrong.status_code == 422
        rows = await audit_rows(timescale_url, f"lot:{lot['lot_id']}")
        assert [(r[0], r[1], r[2]) for r in rows] == [("admin-1", "lot.create", "commissioning")]


async def test_sensor_mounts_move_both_rows_and_keep_history(timescale_url: str) -> None:
    sensor = "fridge-1/probe-a"  # ids may hold '/', as the edge's do
    async with api(timescale_url) as a:
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            # the edge already reported the sensor as a device, with an old place
            await conn.execute(
                "INSERT INTO devices (device_id, device_type, location_id)"
                " VALUES (%s, 'sensor', %s)",
                (sensor, FRIDGE_2),
            )
            await conn.commit()
        admin = a.as_(Role.ADMIN)
        path = f"/v1/sensors/{sensor}"
        first = {"location_id": FRIDGE, "mounted_at": "2026-05-01T08:00:00+02:00"}
        created = await a.client.put(path, json=first, headers=admin)
        assert created.status_code == 201, created.text
        assert created.json()["mounted_at"] == "2026-05-01T06:00:00Z"
        moved = {"location_id": FRIDGE_2, "mounted_at": "2026-05-03T06:00:00Z",
                 "description": "moved after the defrost"}  # fmt: skip
        assert (await a.client.put(path, json=moved, headers=admin)).status_code == 200
        earlier = await a.client.put(path, json=first, headers=admin)
        assert earlier.status_code == 409
        naive = first | {"mounted_at": "2026-05-04T06:00:00"}
        assert (await a.client.put(path, json=naive, headers=admin)).status_code == 422
        nowhere = moved | {"location_id": "attic"}
        assert (await a.client.put(path, json=nowhere, headers=admin)).status_code == 422
        assert (await a.client.put(path, json=moved, headers=a.as_(Role.QA))).status_code == 403
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            cur = await conn.execute(
                "SELECT s.location_id, d.location_id FROM sensors s"
                " JOIN devices d ON d.device_id = s.sensor_id WHERE s.sensor_id = %s",
                (sensor,),
            )
            assert await cur.fetchall() == [(FRIDGE_2, FRIDGE_2)]
        listed = await a.client.get(
            "/v1/sensors", params={"location_id": FRIDGE_2}, headers=a.as_(Role.OPERATOR)
        )
        assert listed.json() == [{"sensor_id": sensor, **moved,
                                  "mounted_at": "2026-05-03T06:00:00Z"}]  # fmt: skip
        history = await audit_rows(timescale_url, f"sensor:{sensor}")
        assert [(r[3]["before"] or {}).get("location_id") for r in history] == [None, FRIDGE]
        assert [r[3]["after"]["location_id"] for r in history] == [FRIDGE, FRIDGE_2]


async def test_concurrent_reparenting_cannot_close_a_loop(timescale_url: str) -> None:
    async with api(timescale_url) as a:
        admin = a.as_(Role.ADMIN)

        async def put(loc: str, parent: str | None) -> int:
            body = {"site_id": SITE, "kind": "zone", "name": loc, "parent_id": parent}
            r = await a.client.put(f"/v1/locations/{loc}", json=body, headers=admin)
            return r.status_code

        for _ in range(5):
            assert await put("zone-a", None) in {200, 201}
            assert await put("zone-b", None) in {200, 201}
            both = await asyncio.gather(put("zone-a", "zone-b"), put("zone-b", "zone-a"))
            assert sorted(both) == [200, 409]
