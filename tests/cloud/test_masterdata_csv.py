"""CSV export and import of master data through ``/v1/export`` and ``/v1/import``.

Good and bad files against the real database: the dry run reports what would change row by
row and writes nothing; an apply writes all rows in one transaction, or none when any row is
bad, and every bad row is reported with its line number.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from cloud.auth.model import Role
from tests.support.ledger_api import Api, api
from tests.support.ledger_seed import FRIDGE, GTIN_A, SITE

pytestmark = pytest.mark.integration

WHY = {"X-Coldtrace-Reason": "yearly review"}
CSV = {"Content-Type": "text/csv"}


@pytest.fixture
async def client(timescale_url: str) -> AsyncIterator[tuple[Api, str]]:
    async with api(timescale_url) as a:
        yield a, timescale_url


async def _one(url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(sql, params)
        return list(await cur.fetchall())


async def _import(a: Api, kind: str, text: str, *, apply: bool) -> dict[str, Any]:
    r = await a.client.post(
        f"/v1/import/{kind}", content=text.encode(), params={"apply": str(apply).lower()},
        headers=a.as_(Role.ADMIN) | WHY | CSV,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_every_kind_exports_and_imports_back_unchanged(client: tuple[Api, str]) -> None:
    a, _ = client
    for kind in ("site", "location", "profile", "product", "lot", "sensor"):
        exported = await a.client.get(f"/v1/export/{kind}", headers=a.as_(Role.VIEWER))
        assert exported.status_code == 200, (kind, exported.text)
        assert exported.headers["content-type"].startswith("text/csv")
        report = await _import(a, kind, exported.text, apply=True)
        assert report["errors"] == 0, (kind, report)
        assert report["created"] == report["updated"] == 0, (kind, report)
    sites = await a.client.get("/v1/export/site", headers=a.as_(Role.QA))
    assert sites.text.splitlines() == ["site_id,name,timezone", f"{SITE},Site one,UTC"]


async def test_dry_run_shows_changes_and_writes_nothing_then_apply_writes(
    client: tuple[Api, str],
) -> None:
    a, url = client
    text = (
        "location_id,site_id,parent_id,kind,name,profile_id\n"
        "cold-zone,site-1,,zone,Cold zone,\n"
        "vax-fridge,site-1,cold-zone,fridge,Vaccine fridge,refrigerated\n"
        f"{FRIDGE},site-1,,fridge,Fridge one (renamed),refrigerated\n"
        "fridge-2,site-1,,fridge,fridge-2,refrigerated\n"
    )
    dry = await _import(a, "location", text, apply=False)
    assert (dry["dry_run"], dry["applied"]) == (True, False)
    assert [(r["line"], r["key"], r["outcome"]) for r in dry["rows"]] == [
        (2, "cold-zone", "created"),
        (3, "vax-fridge", "created"),
        (4, FRIDGE, "updated"),
        (5, "fridge-2", "unchanged"),
    ]
    assert dry["rows"][2]["before"]["name"] == FRIDGE
    assert dry["rows"][2]["after"]["name"] == "Fridge one (renamed)"
    assert await _one(url, "SELECT 1 FROM locations WHERE location_id = 'cold-zone'") == []
    done = await _import(a, "location", text, apply=True)
    assert (done["applied"], done["created"], done["updated"], done["unchanged"]) == (
        True, 2, 1, 1,
    )  # fmt: skip
    assert await _one(url, "SELECT parent_id FROM locations WHERE location_id = 'vax-fridge'") == [
        ("cold-zone",)
    ]
    trail = await _one(
        url, "SELECT action, reason FROM audit_log WHERE subject LIKE 'location:%%'"
        " ORDER BY audit_id",
    )  # fmt: skip
    assert trail == [("location.put", "yearly review")] * 3


async def test_one_bad_row_and_nothing_is_applied(client: tuple[Api, str]) -> None:
    a, url = client
    text = (
        "gtin,name,profile_id,stability_budget\n"
        "09506000134352,Influenza vaccine,refrigerated,PT12H\n"
        "09506000134353,Bad check digit,refrigerated,PT12H\n"
        f"{GTIN_A},Vaccine A,no-such-profile,PT1H\n"
        "09506000134376,Budget in months,refrigerated,P1M\n"
        "09506000134352,Twice,refrigerated,PT1H\n"
    )
    report = await _import(a, "product", text, apply=True)
    assert report["applied"] is False
    errors = {r["line"]: r["error"] for r in report["rows"] if r["error"]}
    assert sorted(errors) == [3, 4, 5, 6]
    assert "check digit" in errors[3]
    assert "no-such-profile" in errors[4]
    assert "ISO 8601" in errors[5]
    assert "line 2" in errors[6]
    assert report["rows"][0]["outcome"] == "created"
    assert await _one(url, "SELECT 1 FROM products WHERE gtin = '09506000134352'") == []
    assert await _one(url, "SELECT 1 FROM audit_log WHERE action = 'product.put'") == []


async def test_files_that_cannot_be_read_are_refused_whole(client: tuple[Api, str]) -> None:
    a, _ = client
    admin = a.as_(Role.ADMIN) | CSV
    cases = {
        b"": "empty",
        b"site_id,name,colour\nx,y,z\n": "unknown column",
        b"name,timezone\nx,UTC\n": "missing key column",
        "site_id,name\nn\xe9,x\n".encode("latin-1"): "not UTF-8",
    }
    for body, words in cases.items():
        r = await a.client.post("/v1/import/site", content=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
        assert words in r.text, (body, r.text)
    assert (await a.client.post("/v1/import/planet", content=b"x", headers=admin)).status_code in (
        404, 422,
    )  # fmt: skip
    extra = await _import(a, "site", "site_id,name\nnorth,North,surplus\n", apply=False)
    assert extra["rows"][0]["error"] == "more cells than columns"


async def test_only_admins_import(client: tuple[Api, str]) -> None:
    a, _ = client
    for role in (Role.VIEWER, Role.OPERATOR, Role.QA):
        r = await a.client.post(
            "/v1/import/site", content=b"site_id,name\nx,y\n", headers=a.as_(role) | CSV
        )
        assert r.status_code == 403, role
    assert (await a.client.get("/v1/export/site")).status_code == 401


async def test_profiles_lots_and_sensors(client: tuple[Api, str]) -> None:
    a, url = client
    profiles = (
        "profile_id,name,action_low,action_high,on_delay,off_delay,deadband,freeze_damage,"
        "silence_after\n"
        "vax,Vaccines,2,8,PT10M,PT5M,0.5,true,PT20M\n"
        "std-refrigerated,Changed,0,10,,,,,\n"
    )
    report = await _import(a, "profile", profiles, apply=False)
    assert report["rows"][0]["outcome"] == "created"
    assert "standard profile" in report["rows"][1]["error"]
    fixed = profiles.rsplit("std-refrigerated", 1)[0]
    assert (await _import(a, "profile", fixed, apply=True))["applied"] is True
    exported = await a.client.get("/v1/export/profile", headers=a.as_(Role.VIEWER))
    vax = next(line for line in exported.text.splitlines() if line.startswith("vax,"))
    assert ",PT10M," in vax
    assert ",true," in vax

    lots = f"gtin,lot_number,expiry\n{GTIN_A},L1,2027-01-31\n{GTIN_A},L2,\n"
    assert (await _import(a, "lot", lots, apply=True))["created"] == 2
    moved = await _import(a, "lot", f"gtin,lot_number,expiry\n{GTIN_A},L1,2027-06-30\n", apply=True)
    assert [r["outcome"] for r in moved["rows"]] == ["updated"]
    assert await _one(url, "SELECT expiry::text, status FROM lots WHERE lot_number = 'L1'") == [
        ("2027-06-30", "available")
    ]

    sensors = (
        "sensor_id,location_id,mounted_at,description\n"
        f"fridge-1/t,{FRIDGE},2026-05-01T08:00:00Z,door probe\n"
        "fridge-9/t,fridge-9,2026-05-01T08:00:00Z,\n"
        "fridge-1/rh,fridge-1,yesterday,\n"
    )
    report = await _import(a, "sensor", sensors, apply=True)
    assert report["applied"] is False
    assert [r["line"] for r in report["rows"] if r["error"]] == [3, 4]
    good = sensors.split("fridge-9/t", maxsplit=1)[0]
    assert (await _import(a, "sensor", good, apply=True))["created"] == 1
    history = await a.client.get("/v1/sensors/fridge-1/t/mounts", headers=a.as_(Role.VIEWER))
    assert [m["location_id"] for m in history.json()] == [FRIDGE]
