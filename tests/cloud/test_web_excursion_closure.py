"""Closing an ended excursion on the dashboard's unit page: QA only, with the anti-forgery header,
through the REST route's own closing path (``close_signed``); at action level with a corrective
action and an e-signature (password and TOTP code typed again); the closure, its signature and
its audit row then show, against a real database."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import get_args

import httpx
import pyotp
import pytest

from cloud.alarms.actions import CorrectiveAction, RootCause
from cloud.web.closures import ACTION_WORDS, ROOT_CAUSE_WORDS
from tests.support.cloud_ingest import app_client
from tests.support.coldchain_seed import FRIDGE_A, FRIDGE_B
from tests.support.people import code_at_step, give_password, signature
from tests.support.web_dashboard import Seeded, seeded_site

ACTION = {"X-Coldtrace-Action": "1"}
SECRET = pyotp.random_base32()


def test_the_form_offers_every_cause_and_action_the_api_accepts() -> None:
    assert list(ROOT_CAUSE_WORDS) == list(get_args(RootCause))
    assert list(ACTION_WORDS) == list(get_args(CorrectiveAction))


@pytest.fixture
async def seeded(timescale_url: str) -> AsyncIterator[Seeded]:
    async with seeded_site(timescale_url) as s:
        await give_password(timescale_url, "qa", full_name="Quinn Quality", totp_secret=SECRET)
        yield s


@pytest.fixture
async def client(timescale_url: str, seeded: Seeded) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(timescale_url) as c:
        yield c


async def as_(client: httpx.AsyncClient, seeded: Seeded, role: str) -> httpx.AsyncClient:
    client.cookies.clear()
    login = await client.post("/ui/login", data={"token": seeded.tokens[role]})
    assert login.status_code == 303, login.text
    return client


async def ended(seeded: Seeded, level: str) -> int:
    """An excursion of fridge B that lasted 20 minutes and ended an hour ago."""
    [(excursion_id,)] = await seeded.site.rows(
        "INSERT INTO excursions (location_id, sensor_id, kind, level, started_at, ended_at,"
        " peak_value) VALUES (%s, 's', 'high', %s, now() - interval '80 minutes',"
        " now() - interval '1 hour', 9.4) RETURNING excursion_id",
        FRIDGE_B, level,
    )  # fmt: skip
    assert isinstance(excursion_id, int)
    return excursion_id


def row_of(page: str, excursion_id: int) -> str:
    found = re.search(rf"<tr [^>]*data-excursion='{excursion_id}'.*?</tr>", page, re.S)
    assert found, f"excursion {excursion_id} not on the page"
    return html.unescape(found[0])


async def test_qa_closes_an_alert_level_excursion_without_signing(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    x = await ended(seeded, "alert")
    url = f"/ui/excursions/{x}/closure"
    body = {"root_cause": "door_left_open", "root_cause_detail": "door ajar after delivery",
            "corrective_action": None, "comment": "checked the seal"}  # fmt: skip
    for role in ("viewer", "operator"):
        await as_(client, seeded, role)
        page = (await client.get(f"/ui/units/{FRIDGE_B}")).text
        assert "waiting for QA to close it" in row_of(page, x)
        assert "form class='closure'" not in page
        assert (await client.post(url, json=body, headers=ACTION)).status_code == 403

    await as_(client, seeded, "qa")
    page = (await client.get(f"/ui/units/{FRIDGE_B}")).text
    form = row_of(page, x)
    assert "<form class='closure'" in form
    assert "Door left open or not shut properly" in form
    assert "sign_password" not in form  # alert level: no signature asked
    assert (await client.post(url, json=body)).status_code == 403  # no anti-forgery header
    closed = await client.post(url, json=body, headers=ACTION)
    assert closed.status_code == 200, closed.text
    assert (closed.json()["closed_by"], closed.json()["signatures"]) == ("qa", [])
    again = await client.post(url, json=body, headers=ACTION)
    assert again.status_code == 409
    assert again.json()["detail"] == f"excursion {x} has been closed already"

    shown = row_of((await client.get(f"/ui/units/{FRIDGE_B}")).text, x)
    assert "Closed by qa" in shown
    assert "Root cause: Door left open or not shut properly (door ajar after delivery)" in shown
    assert "Corrective action: none" in shown
    assert "Comment: checked the seal" in shown
    assert "<form" not in shown
    audit = await seeded.site.rows(
        "SELECT actor, reason, detail->>'root_cause' FROM audit_log"
        " WHERE action = 'excursion_closed' AND subject = %s", f"excursion:{x}"
    )  # fmt: skip
    assert audit == [("qa", "checked the seal", "door_left_open")]


async def test_an_action_level_closure_needs_action_and_signature(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    x = await ended(seeded, "action")
    url = f"/ui/excursions/{x}/closure"
    await as_(client, seeded, "qa")
    form = row_of((await client.get(f"/ui/units/{FRIDGE_B}")).text, x)
    assert "corrective action and your electronic signature are needed" in form
    assert "name='sign_password'" in form
    assert "<option value='reviewed'>Reviewed</option>" in form

    body = {"root_cause": "equipment_failure", "corrective_action": "equipment_repaired",
            "corrective_action_detail": "compressor relay replaced"}  # fmt: skip
    unsigned = await client.post(url, json=body, headers=ACTION)
    assert unsigned.status_code == 422
    assert "needs an e-signature" in unsigned.json()["detail"]
    signed = signature("qa", "reviewed", code=code_at_step(SECRET))
    valid = {code_at_step(SECRET, step) for step in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)
    wrong_code = await client.post(
        url, json=body | {"signature": signed | {"code": wrong}}, headers=ACTION
    )
    assert wrong_code.status_code == 401, wrong_code.text
    wrong_password = await client.post(
        url, json=body | {"signature": signed | {"password": "not it"}}, headers=ACTION
    )
    assert wrong_password.status_code == 401
    no_action = await client.post(
        url, json=body | {"corrective_action": None, "signature": signed}, headers=ACTION
    )
    assert no_action.status_code == 409
    assert no_action.json()["detail"] == "an action-level excursion needs a corrective action"
    assert await seeded.site.rows("SELECT 1 FROM excursion_closures") == []

    # refused before the signature was checked: the code (which signs once) is still unused
    closed = await client.post(url, json=body | {"signature": signed}, headers=ACTION)
    assert closed.status_code == 200, closed.text
    [sig] = closed.json()["signatures"]
    assert sig["manifestation"].startswith("Quinn Quality (qa), ")
    assert sig["manifestation"].endswith(" UTC, reviewed")
    assert sig["factors"] == "password+totp"

    shown = row_of((await client.get(f"/ui/units/{FRIDGE_B}")).text, x)
    assert "Closed by qa" in shown
    assert "Corrective action: Equipment repaired (compressor relay replaced)" in shown
    assert f"Signed: {sig['manifestation']}" in re.sub(r"<[^>]+>", "", shown)
    rest = await client.get(
        f"/v1/excursions/{x}/closure",
        headers={"Authorization": f"Bearer {seeded.tokens['viewer']}"},
    )
    assert rest.json()["signatures"] == [sig]  # the same record as the REST route's
    audit = await seeded.site.rows(
        "SELECT actor, detail->>'corrective_action', detail->>'level' FROM audit_log"
        " WHERE action = 'excursion_closed' AND subject = %s", f"excursion:{x}"
    )  # fmt: skip
    assert audit == [("qa", "equipment_repaired", "action")]


async def test_an_excursion_still_going_on_cannot_be_closed(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    [(still_open,)] = await seeded.site.rows(
        "SELECT excursion_id FROM excursions WHERE location_id = %s AND ended_at IS NULL",
        FRIDGE_A,
    )
    await as_(client, seeded, "qa")
    row = row_of((await client.get(f"/ui/units/{FRIDGE_A}")).text, int(str(still_open)))
    assert "it can be closed once it ends" in row
    assert "<form" not in row
    body = {"root_cause": "door_left_open", "corrective_action": "product_moved",
            "signature": signature("qa", "approved", code=code_at_step(SECRET))}  # fmt: skip
    refused = await client.post(f"/ui/excursions/{still_open}/closure", json=body, headers=ACTION)
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith("the excursion is still open")
    missing = await client.post("/ui/excursions/999999/closure", json=body, headers=ACTION)
    assert missing.status_code == 404
