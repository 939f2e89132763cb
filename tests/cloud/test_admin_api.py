"""The administration API added for the admin pages: gateways, roles, profile audit, mounts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from cloud.auth.model import Role
from tests.support.ledger_api import Api, api
from tests.support.ledger_seed import FRIDGE, FRIDGE_2, SITE

pytestmark = pytest.mark.integration

WHY = {"X-Coldtrace-Reason": "commissioning"}
READERS = (Role.VIEWER, Role.OPERATOR, Role.QA)


@pytest.fixture
async def client(timescale_url: str) -> AsyncIterator[tuple[Api, str]]:
    async with api(timescale_url) as a:
        yield a, timescale_url


async def _audit(url: str, subject: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT action, reason, detail->'before', detail->'after' FROM audit_log"
            " WHERE subject = %s ORDER BY audit_id",
            (subject,),
        )
        return list(await cur.fetchall())


async def test_gateway_lifecycle_over_http(client: tuple[Api, str]) -> None:
    a, url = client
    admin = a.as_(Role.ADMIN) | WHY
    body = {"gateway_id": "gw-dock", "site_id": SITE}
    for role in READERS:
        assert (
            await a.client.post("/v1/gateways", json=body, headers=a.as_(role))
        ).status_code == 403
    created = await a.client.post("/v1/gateways", json=body, headers=admin)
    assert created.status_code == 201, created.text
    first = created.json()["token"]
    assert len(first) > 20
    again = await a.client.post("/v1/gateways", json=body, headers=admin)
    assert again.status_code == 409
    nowhere = await a.client.post(
        "/v1/gateways", json={"gateway_id": "gw-x", "site_id": "no-such-site"}, headers=admin
    )
    assert nowhere.status_code == 422
    # ingest knows the token: an empty batch is refused for its body (422), not the token (401)
    probe = await a.client.post("/v1/batches", content=b"{}", headers={
        "Authorization": f"Bearer {first}", "Content-Type": "application/json"})  # fmt: skip
    assert probe.status_code != 401, probe.text
    rotated = await a.client.post("/v1/gateways/gw-dock/token", headers=admin)
    assert rotated.status_code == 201
    assert rotated.json()["token"] != first
    old = await a.client.post("/v1/batches", content=b"{}", headers={
        "Authorization": f"Bearer {first}", "Content-Type": "application/json"})  # fmt: skip
    assert old.status_code == 401
    assert (await a.client.post("/v1/gateways/nope/token", headers=admin)).status_code == 404
    disabled = await a.client.post("/v1/gateways/gw-dock/disable", headers=admin)
    assert disabled.status_code == 200
    assert (await a.client.post("/v1/gateways/gw-dock/disable", headers=admin)).status_code == 404
    listed = await a.client.get("/v1/gateways/gw-dock", headers=a.as_(Role.VIEWER))
    assert listed.json()["disabled"] is True
    trail = await _audit(url, "gateway:gw-dock")
    assert [(t[0], t[1]) for t in trail] == [
        ("gateway.add", "commissioning"),
        ("gateway.rotate", "commissioning"),
        ("gateway.disable", "commissioning"),
    ]
    assert trail[0][2] is None
    assert trail[0][3]["site_id"] == SITE
    assert trail[2][2:] == ({"disabled": False}, {"disabled": True})
    assert first not in str(trail)
    assert rotated.json()["token"] not in str(trail)


async def test_role_change_is_audited_and_applies_at_once(client: tuple[Api, str]) -> None:
    a, url = client
    admin = a.as_(Role.ADMIN) | WHY
    viewer = a.as_(Role.VIEWER)
    assert (await a.client.get("/v1/users", headers=viewer)).status_code == 403
    refused = await a.client.put("/v1/users/viewer-1/role", json={"role": "admin"}, headers=viewer)
    assert refused.status_code == 403
    changed = await a.client.put("/v1/users/viewer-1/role", json={"role": "admin"}, headers=admin)
    assert changed.json() == {"name": "viewer-1", "role": "admin", "enabled": True}
    assert (await a.client.get("/v1/users", headers=viewer)).status_code == 200
    missing = await a.client.put("/v1/users/nobody/role", json={"role": "qa"}, headers=admin)
    assert missing.status_code == 404
    bad = await a.client.put("/v1/users/viewer-1/role", json={"role": "boss"}, headers=admin)
    assert bad.status_code == 422
    assert await _audit(url, "user:viewer-1") == [
        ("user.role", "commissioning", {"role": "viewer"}, {"role": "admin"})
    ]


async def test_profile_changes_keep_before_and_after(client: tuple[Api, str]) -> None:
    a, url = client
    admin = a.as_(Role.ADMIN) | WHY
    body = {"profile_id": "vax", "name": "Vaccines", "action_low": 2.0, "action_high": 8.0,
            "on_delay": "PT10M"}  # fmt: skip
    assert (await a.client.put("/v1/profiles/vax", json=body, headers=admin)).status_code == 200
    body["action_high"] = 9.0
    assert (await a.client.put("/v1/profiles/vax", json=body, headers=admin)).status_code == 200
    trail = await _audit(url, "profile:vax")
    assert [t[1] for t in trail] == ["commissioning", "commissioning"]
    assert trail[0][2] is None
    assert trail[1][2]["action_high"] == 8.0
    assert trail[1][3]["action_high"] == 9.0


async def test_mount_history_is_listed(client: tuple[Api, str]) -> None:
    a, _ = client
    admin = a.as_(Role.ADMIN) | WHY
    for place, at in ((FRIDGE, "2026-05-01T08:00:00Z"), (FRIDGE_2, "2026-05-03T08:00:00Z"),
                      (None, "2026-05-04T08:00:00Z")):  # fmt: skip
        r = await a.client.put(
            "/v1/sensors/logger/7", json={"location_id": place, "mounted_at": at}, headers=admin
        )
        assert r.status_code in {200, 201}, r.text
    found = await a.client.get("/v1/sensors/logger/7/mounts", headers=a.as_(Role.VIEWER))
    assert found.status_code == 200
    assert [(m["location_id"], m["valid_from"]) for m in found.json()] == [
        (FRIDGE, "2026-05-01T08:00:00Z"),
        (FRIDGE_2, "2026-05-03T08:00:00Z"),
        (None, "2026-05-04T08:00:00Z"),
    ]
    missing = await a.client.get("/v1/sensors/never/mounts", headers=a.as_(Role.VIEWER))
    assert missing.status_code == 404
    earlier = await a.client.put(
        "/v1/sensors/logger/7",
        json={"location_id": FRIDGE, "mounted_at": "2026-05-02T08:00:00Z"},
        headers=admin,
    )
    assert earlier.status_code == 409
