"""The dashboard over HTTP: sign-in, the overview's sections, acknowledge, QA disposition, the
lot page and the event stream, against a real database (the read paths in both storage
layouts, the actions with TimescaleDB only: they touch no time-series table)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from cloud.storage.database import make_pool
from cloud.web.config import WebSettings
from cloud.web.router import event_stream
from cloud.web.session import COOKIE
from tests.support.cloud_ingest import app_client
from tests.support.people import give_password, signature
from tests.support.web_dashboard import Seeded, seeded_site

pytestmark = pytest.mark.integration
ACTION = {"X-Coldtrace-Action": "1"}


@pytest.fixture
async def seeded(timescale_url: str) -> AsyncIterator[Seeded]:
    async with seeded_site(timescale_url) as s:
        yield s


@pytest.fixture
async def client(timescale_url: str, seeded: Seeded) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(timescale_url) as c:
        yield c


async def signed_in(client: httpx.AsyncClient, token: str) -> httpx.AsyncClient:
    """Signs in through the form; the client keeps the session cookie it is given."""
    client.cookies.clear()
    login = await client.post("/ui/login", data={"token": token})
    assert login.status_code == 303, login.text
    return client


async def test_pages_need_a_session(client: httpx.AsyncClient, seeded: Seeded) -> None:
    page = await client.get("/ui")
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/login"
    assert (await client.get("/ui/events")).status_code == 401
    refused = await client.post("/ui/login", data={"token": "ct_not-a-token"})
    assert refused.status_code == 401
    assert "Unknown, expired or revoked token" in refused.text

    login = await client.post("/ui/login", data={"token": seeded.tokens["viewer"]})
    assert login.status_code == 303
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert client.cookies[COOKIE] != seeded.tokens["viewer"]  # a session id, not the token
    assert seeded.tokens["viewer"] not in cookie
    assert (await client.get("/ui")).status_code == 200


async def test_overview_shows_units_excursion_and_quarantine(database_url: str) -> None:
    async with seeded_site(database_url) as seeded, app_client(database_url) as client:
        await _overview(client, seeded)


async def _overview(client: httpx.AsyncClient, seeded: Seeded) -> None:
    page = await (await signed_in(client, seeded.tokens["viewer"])).get("/ui")
    assert page.status_code == 200
    html = page.text
    assert 'data-location="cc-fridge-a" data-state="excursion"' in html
    assert 'data-location="cc-fridge-b" data-state="ok"' in html
    assert 'data-location="cc-room" data-state="ok"' in html
    assert "12.0 °C" in html  # fridge A's current temperature
    assert html.count('<svg class="spark"') == 3
    assert html.count("data-excursion=") == 1
    lots = seeded.site.lots
    for name in ("a1", "a2"):
        assert f'<tr data-lot="{lots[name]}">' in html
    assert f'<tr data-lot="{lots["b1"]}">' not in html
    assert "Excursions" in html
    assert "Time out of range" in html
    assert '<script src="/ui/static/app.js' in html
    script = await client.get("/ui/static/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "EventSource" in script.text
    assert (await client.get("/ui/static/../router.py")).status_code == 404


async def test_acknowledge_needs_the_action_header_and_an_operator(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    rows = await seeded.site.rows(
        "SELECT alert_id FROM alerts WHERE excursion_id IS NOT NULL AND acknowledged_at IS NULL"
    )
    ids = [int(str(r[0])) for r in rows]
    assert ids
    await signed_in(client, seeded.tokens["operator"])
    forged = await client.post("/ui/alerts/acknowledge", json={"alert_ids": ids})
    assert forged.status_code == 403
    await signed_in(client, seeded.tokens["viewer"])
    viewer = await client.post("/ui/alerts/acknowledge", json={"alert_ids": ids}, headers=ACTION)
    assert viewer.status_code == 403

    await signed_in(client, seeded.tokens["operator"])
    done = await client.post("/ui/alerts/acknowledge", json={"alert_ids": ids}, headers=ACTION)
    assert done.json() == {"acknowledged": len(ids)}
    acked = await seeded.site.rows(
        "SELECT DISTINCT acknowledged_by FROM alerts WHERE alert_id = ANY(%s)", ids
    )
    assert acked == [("operator",)]
    page = (await client.get("/ui")).text
    assert "✓ operator" in page
    missing = await client.post("/ui/alerts/acknowledge", json={"alert_ids": [999999]},
                                headers=ACTION)  # fmt: skip
    assert missing.status_code == 404


async def test_qa_release_and_reject_go_through_the_ledger(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    a1, a2, b1 = (seeded.site.lots[n] for n in ("a1", "a2", "b1"))
    await give_password(seeded.site.url, "qa", full_name="Quinn Quality")
    body = {"decision": "release", "reason": "stability data covers 12 °C for 40 min",
            "signature": signature("qa", "released")}  # fmt: skip
    await signed_in(client, seeded.tokens["operator"])
    assert (await client.post(f"/ui/lots/{a1}/disposition", json=body,
                              headers=ACTION)).status_code == 403  # fmt: skip
    await signed_in(client, seeded.tokens["qa"])
    assert (await client.post(f"/ui/lots/{a1}/disposition", json={**body, "reason": ""},
                              headers=ACTION)).status_code == 422  # fmt: skip
    # fridge A's excursion is still open: a release needs the explicit confirmation
    asked = await client.post(f"/ui/lots/{a1}/disposition", json=body, headers=ACTION)
    assert asked.status_code == 409, asked.text
    assert asked.json()["detail"]["confirm"] == "open_excursion"
    assert await seeded.site.rows("SELECT 1 FROM ledger_entries WHERE movement = 'release'") == []
    confirmed = {**body, "confirm_open_excursion": True}
    released = await client.post(f"/ui/lots/{a1}/disposition", json=confirmed, headers=ACTION)
    assert released.status_code == 200, released.text
    assert released.json()["signature"].startswith("Quinn Quality (qa), ")
    reject = {"decision": "reject", "reason": "no data", "signature": signature("qa", "released")}
    mismatch = await client.post(f"/ui/lots/{a2}/disposition", json=reject, headers=ACTION)
    assert mismatch.status_code == 422  # a reject is not signed as "released"
    reject["signature"] = signature("qa", "rejected")
    rejected = await client.post(f"/ui/lots/{a2}/disposition", json=reject, headers=ACTION)
    assert rejected.status_code == 200
    not_quarantined = await client.post(f"/ui/lots/{b1}/disposition", json=body, headers=ACTION)
    assert not_quarantined.status_code == 409

    entries = await seeded.site.rows(
        "SELECT lot_id, movement, actor, reason, signature_meaning FROM ledger_entries"
        " WHERE movement IN ('release', 'reject') ORDER BY entry_id"
    )
    assert [(e[0], e[1], e[2]) for e in entries] == [(a1, "release", "qa"), (a2, "reject", "qa")]
    assert entries[0][3] == body["reason"]
    assert entries[0][4] == "released: approved for use"
    lot_page = (await client.get(f"/ui/lots/{a1}")).text
    assert "Electronic signatures" in lot_page
    assert "Quinn Quality (qa), " in lot_page
    [(actor, detail)] = await seeded.site.rows(
        "SELECT actor, detail FROM audit_log WHERE action = 'release_during_open_excursion'"
        " AND subject = %s", f"lot:{a1}"
    )  # fmt: skip
    assert actor == "qa"
    assert isinstance(detail, dict)
    assert detail["where"] == ["cc-fridge-a"]
    page = (await client.get("/ui")).text
    assert "No lot is waiting for a disposition." in page


async def test_lot_page_shows_exposure_mkt_and_budget(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    await signed_in(client, seeded.tokens["viewer"])
    a1 = seeded.site.lots["a1"]
    page = await client.get(f"/ui/lots/{a1}")
    assert page.status_code == 200
    html = page.text
    assert "Vaccine · lot A1" in html
    assert 'data-status="quarantined"' in html
    assert "MKT, whole life" in html
    assert "Stability budget" in html
    assert "class='lot-exposure' data-exposure=" in html  # drawn by uPlot from these data
    assert "data-limit='action-high'>action high 8.0 °C" in html
    assert "Too warm (still going on)" in html  # the excursion during its stay
    assert (await client.get("/ui/lots/999999")).status_code == 404


async def test_event_stream_pushes_sections_when_data_changes(
    timescale_url: str, seeded: Seeded
) -> None:
    cfg = WebSettings(poll_interval=timedelta(milliseconds=20), keepalive=timedelta(seconds=30))
    polls = 0

    async def disconnected() -> bool:
        nonlocal polls
        polls += 1
        return polls > 50

    async with make_pool(timescale_url, max_size=2) as pool:
        stream = event_stream(pool, cfg, disconnected)
        assert await anext(stream) == "retry: 1000\n\n"
        first = await anext(stream)
        assert first.startswith("event: sections\ndata: ")
        sections = json.loads(first.split("data: ", 1)[1])
        shown = {"units", "excursions", "alarms", "gateways", "quarantine", "receiving", "kpis"}
        assert set(sections) == shown
        assert 'data-state="excursion"' in sections["units"]
        await seeded.site.rows(
            "UPDATE alerts SET acknowledged_at = now(), acknowledged_by = 'x' RETURNING 1"
        )
        second = await anext(stream)
        assert "✓ x" in json.loads(second.split("data: ", 1)[1])["excursions"]
        rest = [chunk async for chunk in stream]
        assert rest == []  # unchanged data: nothing more until the client went away
