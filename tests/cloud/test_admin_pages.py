"""The admin pages under /ui/admin: read-only for every role, forms and actions for admins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from cloud.admin.views import SECTIONS
from cloud.auth.model import Role
from tests.support.ledger_api import Api, api
from tests.support.ledger_seed import FRIDGE, SITE

pytestmark = pytest.mark.integration

ACTION = {"X-Coldtrace-Action": "1"}


@pytest.fixture
async def client(timescale_url: str) -> AsyncIterator[tuple[Api, str]]:
    async with api(timescale_url) as a:
        yield a, timescale_url


async def _sign_in(client: httpx.AsyncClient, token: str) -> None:
    client.cookies.clear()
    login = await client.post("/ui/login", data={"token": token})
    assert login.status_code == 303, login.text


async def _rows(url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(sql, params)
        return list(await cur.fetchall())


async def test_every_role_reads_every_page_and_only_admins_get_forms(
    client: tuple[Api, str],
) -> None:
    a, _ = client
    assert (await a.client.get("/ui/admin/sites")).status_code == 303
    for role in Role:
        await _sign_in(a.client, a.tokens[role])
        for key, title in SECTIONS:
            page = await a.client.get(f"/ui/admin/{key}")
            assert page.status_code == 200, (role, key, page.text[:300])
            assert title.replace("&", "&amp;") in page.text
            assert "Content-Security-Policy" in page.headers
            forms = "class='admin-form'" in page.text or "class='admin-csv'" in page.text
            if key == "audit":
                assert not forms
            else:
                assert forms == (role is Role.ADMIN), (role, key)
        assert (await a.client.get("/ui/admin/nothing")).status_code == 404
    locations = await a.client.get("/ui/admin/locations")
    assert f"data-location='{FRIDGE}'" in locations.text
    profiles = await a.client.get("/ui/admin/profiles")
    assert "a door opened for a minute" in profiles.text


async def test_admin_saves_through_the_page_actions_and_each_change_is_audited(
    client: tuple[Api, str],
) -> None:
    a, url = client
    await _sign_in(a.client, a.tokens[Role.ADMIN])
    body = {"row": {"site_id": "north", "name": "North", "timezone": "Europe/Berlin"},
            "reason": "new wing"}  # fmt: skip
    refused = await a.client.post("/ui/admin/api/save/site", json=body)
    assert refused.status_code == 403  # no anti-forgery header
    saved = await a.client.post("/ui/admin/api/save/site", json=body, headers=ACTION)
    assert saved.json()["outcome"] == "created"
    again = await a.client.post("/ui/admin/api/save/site", json=body, headers=ACTION)
    assert again.json()["outcome"] == "unchanged"
    bad = await a.client.post(
        "/ui/admin/api/save/site",
        json={"row": {"site_id": "x", "name": "X", "timezone": "CEST"}, "reason": "typo"},
        headers=ACTION,
    )
    assert bad.status_code == 422
    assert "IANA" in bad.json()["detail"]
    no_reason = await a.client.post(
        "/ui/admin/api/save/site", json={"row": body["row"], "reason": ""}, headers=ACTION
    )
    assert no_reason.status_code == 422
    mounted = await a.client.post("/ui/admin/api/save/sensor", headers=ACTION, json={
        "row": {"sensor_id": "fridge-1/t", "location_id": FRIDGE,
                "mounted_at": "2026-05-04T08:00:00Z", "description": "door probe"},
        "reason": "commissioning"})  # fmt: skip
    assert mounted.json()["outcome"] == "created", mounted.text
    sensors = await a.client.get("/ui/admin/sensors")
    assert "door probe" in sensors.text
    assert "2026-05-04" in sensors.text
    gateway = await a.client.post("/ui/admin/api/gateways", headers=ACTION, json={
        "row": {"gateway_id": "north-gw", "site_id": SITE}, "reason": "commissioning"})  # fmt: skip
    token = gateway.json()["token"]
    assert len(token) >= 32
    page = await a.client.get("/ui/admin/gateways")
    assert "north-gw" in page.text
    assert token not in page.text
    assert "not reported" in page.text
    moved = await a.client.post("/ui/admin/api/gateways/north-gw/site", headers=ACTION,
                                json={"row": {"site_id": "north"}, "reason": "moved"})  # fmt: skip
    assert moved.status_code == 200, moved.text
    nowhere = await a.client.post("/ui/admin/api/gateways/north-gw/site", headers=ACTION,
                                  json={"row": {"site_id": "nope"}, "reason": "x"})  # fmt: skip
    assert nowhere.status_code == 422
    rotated = await a.client.post("/ui/admin/api/gateways/north-gw/rotate", headers=ACTION,
                                  json={"reason": "lost laptop"})  # fmt: skip
    assert rotated.json()["token"] != token
    person = await a.client.post("/ui/admin/api/users", headers=ACTION, json={
        "row": {"name": "nurse.k", "role": "operator"}, "reason": "new staff"})  # fmt: skip
    assert person.status_code == 200, person.text
    promoted = await a.client.post("/ui/admin/api/users/nurse.k/role", headers=ACTION,
                                   json={"row": {"role": "qa"}, "reason": "trained"})  # fmt: skip
    assert promoted.status_code == 200
    off = await a.client.post("/ui/admin/api/users/nurse.k/disable", headers=ACTION,
                              json={"reason": "left"})  # fmt: skip
    assert off.status_code == 200
    trail = await _rows(url, "SELECT action, subject, reason FROM audit_log"
                        " WHERE actor = 'admin-1' ORDER BY audit_id")  # fmt: skip
    assert trail == [
        ("site.put", "site:north", "new wing"),
        ("sensor.mount", "sensor:fridge-1/t", "commissioning"),
        ("gateway.add", "gateway:north-gw", "commissioning"),
        ("gateway.site", "gateway:north-gw", "moved"),
        ("gateway.rotate", "gateway:north-gw", "lost laptop"),
        ("user.add", "user:nurse.k", "new staff"),
        ("user.role", "user:nurse.k", "trained"),
        ("user.disable", "user:nurse.k", "left"),
    ]
    audit_page = await a.client.get("/ui/admin/audit")
    assert "lost laptop" in audit_page.text


async def test_other_roles_cannot_act(client: tuple[Api, str]) -> None:
    a, url = client
    for role in (Role.VIEWER, Role.OPERATOR, Role.QA):
        await _sign_in(a.client, a.tokens[role])
        for path in ("/ui/admin/api/save/site", "/ui/admin/api/gateways", "/ui/admin/api/users",
                     "/ui/admin/api/import/site"):  # fmt: skip
            r = await a.client.post(path, headers=ACTION, json={"row": {}, "reason": "x",
                                                                 "csv": "site_id\n"})  # fmt: skip
            assert r.status_code == 403, (role, path)
    assert await _rows(url, "SELECT 1 FROM audit_log") == []


async def test_csv_through_the_page(client: tuple[Api, str]) -> None:
    a, url = client
    await _sign_in(a.client, a.tokens[Role.VIEWER])
    exported = await a.client.get("/ui/admin/export/location")
    assert exported.status_code == 200
    assert exported.text.startswith("location_id,site_id,parent_id,kind,name,profile_id")
    await _sign_in(a.client, a.tokens[Role.ADMIN])
    text = "site_id,name,timezone\nnorth,North,Europe/Berlin\nsouth,South,Mars/Base\n"
    dry = await a.client.post("/ui/admin/api/import/site", headers=ACTION,
                              json={"csv": text, "reason": "sites"})  # fmt: skip
    assert [(r["line"], r["outcome"]) for r in dry.json()["rows"]] == [(2, "created"), (3, None)]
    applied = await a.client.post("/ui/admin/api/import/site?apply=true", headers=ACTION,
                                  json={"csv": text, "reason": "sites"})  # fmt: skip
    assert applied.json()["applied"] is False
    assert await _rows(url, "SELECT 1 FROM sites WHERE site_id = 'north'") == []
    good = "site_id,name,timezone\nnorth,North,Europe/Berlin\n"
    done = await a.client.post("/ui/admin/api/import/site?apply=true", headers=ACTION,
                               json={"csv": good, "reason": "sites"})  # fmt: skip
    assert done.json()["applied"] is True


async def test_hostile_values_are_refused_not_failed(client: tuple[Api, str]) -> None:
    a, _ = client
    await _sign_in(a.client, a.tokens[Role.ADMIN])
    cases = [
        ("/ui/admin/api/save/profile", {"row": {"profile_id": "p", "name": "a\x00b",
                                                "action_high": "8"}, "reason": "x"}),
        ("/ui/admin/api/save/site", {"row": {"site_id": "s"}, "reason": "nul\x00"}),
        ("/ui/admin/api/users/x%00y/role", {"row": {"role": "qa"}, "reason": "x"}),
        ("/ui/admin/api/gateways", {"row": {"gateway_id": "g", "site_id": "a\x00"},
                                    "reason": "x"}),
        ("/ui/admin/api/import/profile", {"csv": "profile_id,name,action_high\np,a\x00,8\n",
                                          "reason": "x"}),
    ]  # fmt: skip
    for path, body in cases:
        r = await a.client.post(path, json=body, headers=ACTION)
        assert r.status_code < 500, (path, r.text)
        assert r.status_code in (200, 404, 422), (path, r.text)


async def test_rfid_reader_and_door_through_the_page(client: tuple[Api, str]) -> None:
    a, url = client
    await _sign_in(a.client, a.tokens[Role.ADMIN])
    made = await a.client.post("/ui/admin/api/gateways", headers=ACTION, json={
        "row": {"gateway_id": "dock-gw", "site_id": SITE}, "reason": "dock"})  # fmt: skip
    assert made.status_code == 200, made.text
    reader = {"gateway_id": "dock-gw", "name": "dock-reader", "host": "10.0.0.20",
              "port": "5084", "antennas": "1, 2, 3, 4"}  # fmt: skip
    saved = await a.client.post("/ui/admin/api/readers", headers=ACTION,
                                json={"row": reader, "reason": "dock door 1"})  # fmt: skip
    assert saved.status_code == 200, saved.text
    door = {"gateway_id": "dock-gw", "door_id": "dock-1", "reader": "dock-reader",
            "outside_antennas": "1, 2", "inside_antennas": "3,4"}  # fmt: skip
    saved = await a.client.post("/ui/admin/api/doors", headers=ACTION,
                                json={"row": door, "reason": "dock door 1"})  # fmt: skip
    assert saved.status_code == 200, saved.text
    for bad, code in (({**door, "inside_antennas": "three"}, 422),
                      ({**door, "reader": "no-such-reader"}, 404),
                      ({**door, "outside_antennas": ""}, 422)):  # fmt: skip
        r = await a.client.post("/ui/admin/api/doors", headers=ACTION,
                                json={"row": bad, "reason": "x"})  # fmt: skip
        assert r.status_code == code, (bad, r.text)
    page = await a.client.get("/ui/admin/doors")
    assert "10.0.0.20" in page.text
    assert "dock-1" in page.text
    config = await a.client.get("/v1/gateways/dock-gw/config", headers=a.as_(Role.ADMIN))
    sections = config.json()["sections"]
    assert [r["reader_id"] for r in sections["llrp"]] == ["dock-reader"]
    assert sections["doors"][0]["door_id"] == "dock-1"
    trail = await _rows(url, "SELECT action FROM audit_log WHERE reason = 'dock door 1'"
                        " ORDER BY audit_id")  # fmt: skip
    assert len(trail) == 2
