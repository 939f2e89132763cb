"""The dashboard read by people (issue 16.3): plain words and what to do for every alarm and
excursion kind, error pages instead of JSON under /ui (the API keeps JSON), names instead of
ids, who released a lot, when and why, a release past an open excursion only when confirmed,
and no buttons a role may not use."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import get_args

import httpx
import pytest
from fastapi import FastAPI

from cloud.coldchain.alerts import AlertKind
from cloud.coldchain.excursions import Kind
from cloud.coldchain.profiles import Level
from cloud.web.errors import install_error_pages
from cloud.web.wording import ALARMS, EXCURSIONS, alarm_words, excursion_words
from tests.support.cloud_ingest import app_client
from tests.support.people import give_password, signature
from tests.support.web_dashboard import Seeded, seeded_site

ACTION = {"X-Coldtrace-Action": "1"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
RAW_IDS = ("cc-site", "cc-fridge-a", "cc-fridge-b", "cc-room")
ENGINEERING = re.compile(r"\b(action[- ]level|alert[- ]level|excursion_|no_data|sensor_id)\b")


def test_every_alarm_kind_has_plain_words_and_what_to_do() -> None:
    assert set(get_args(AlertKind)) == set(ALARMS)
    for kind in get_args(AlertKind):
        words = alarm_words(kind)
        assert words.title
        assert words.says.endswith(".")
        assert words.todo.endswith(".")
        assert not ENGINEERING.search(words.says + words.todo), kind
    unknown = alarm_words("brand_new_kind")
    assert unknown.title == "Brand new kind"


def test_every_excursion_kind_and_level_has_plain_words_and_what_to_do() -> None:
    pairs = {(k, lv) for k in get_args(Kind) for lv in get_args(Level)}
    assert pairs == set(EXCURSIONS)
    for kind, level in pairs:
        words = excursion_words(kind, level, "12 min", "Fridge 2")
        assert "12 min" in words.says, (kind, level)
        assert not ENGINEERING.search(words.says + words.todo), (kind, level)
    high = excursion_words("high", "action", "12 min", "Fridge 2")
    assert high.says == "Too warm for 12 min: the products inside may be damaged."
    assert high.todo == (
        "Do not use the products inside; move them to a working fridge (Fridge 2 is in range),"
        " keep them apart, and ask QA for a decision."
    )
    assert "Fridge" not in excursion_words("high", "action", "5 min").todo.split("(")[0][40:]


@pytest.fixture
async def seeded(timescale_url: str) -> AsyncIterator[Seeded]:
    async with seeded_site(timescale_url) as s:
        # names people use, unlike the ids
        await s.site.rows(
            "UPDATE locations SET name = CASE location_id"
            " WHEN 'cc-fridge-a' THEN 'Vaccine fridge A' WHEN 'cc-fridge-b' THEN 'Vaccine fridge B'"
            " WHEN 'cc-room' THEN 'Store room'"
            " ELSE 'Dock' END RETURNING 1"
        )
        await s.site.rows(
            "UPDATE sites SET name = 'Saint-Louis pharmacy', timezone = 'Europe/Paris' RETURNING 1"
        )
        await s.site.rows(
            "UPDATE sensors SET description = 'probe in the middle shelf'"
            " WHERE sensor_id = 'cc-fridge-a/t' RETURNING 1"
        )
        yield s


@pytest.fixture
async def client(timescale_url: str, seeded: Seeded) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(timescale_url) as c:
        yield c


async def sign_in(client: httpx.AsyncClient, token: str) -> None:
    client.cookies.clear()
    assert (await client.post("/ui/login", data={"token": token})).status_code == 303


def visible(page: str) -> str:
    """The text a person sees: no tags, attributes, scripts' data."""
    text = html.unescape(re.sub(r"<[^>]*>", " ", page))
    return re.sub(r"\s+", " ", text).replace(" .", ".").replace(" ,", ",")


@pytest.mark.integration
async def test_error_pages_for_people_json_for_the_api(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    missing = await client.get("/ui/does-not-exist", headers=BROWSER)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "<h2>Not found</h2>" in missing.text
    assert "There is no page at /ui/does-not-exist." in missing.text
    assert "<a class='brand' href='/ui'>coldtrace</a>" in missing.text  # the dashboard layout
    assert "Content-Security-Policy" in missing.headers
    api = await client.get("/v1/does-not-exist")
    assert api.status_code == 404
    assert api.json() == {"detail": "Not Found"}

    await sign_in(client, seeded.tokens["viewer"])
    bad = await client.get("/ui/lots/not-a-number", headers=BROWSER)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("text/html")
    assert "Something in the request is not right" in bad.text
    assert "lot id:" in bad.text
    assert "[{" not in bad.text  # no pydantic dump
    assert '"loc"' not in bad.text
    unknown_lot = await client.get("/ui/lots/999999", headers=BROWSER)
    assert unknown_lot.status_code == 404
    assert "no lot 999999" in unknown_lot.text

    # the page's own script fetches keep JSON (it reads "detail")
    history = await client.get("/ui/history", params={"location": "x", "start": "bad"})
    assert history.status_code == 422
    assert isinstance(history.json()["detail"], list)
    refused = await client.post(
        "/ui/lots/1/disposition", json={"decision": "release", "reason": "x"}, headers=ACTION
    )
    assert refused.status_code == 403
    assert refused.json() == {"detail": "role qa required"}
    # a browser navigating to a refused page gets a page
    forbidden = await client.post("/ui/lots/1/disposition", json={}, headers={**ACTION, **BROWSER})
    assert forbidden.status_code == 403
    assert "Your role may not do this" in forbidden.text

    client.cookies.clear()
    signed_out = await client.get("/ui/history", params={"location": "x"}, headers=BROWSER)
    assert signed_out.status_code == 401
    assert "You are not signed in" in signed_out.text
    assert "href='/ui/login'" in signed_out.text


@pytest.mark.integration
async def test_overview_and_lot_page_show_names_and_plain_words(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    await sign_in(client, seeded.tokens["viewer"])
    page = (await client.get("/ui")).text
    text = visible(page)
    for raw in RAW_IDS:
        assert raw not in text, raw
    assert "Saint-Louis pharmacy" in text
    assert "Vaccine fridge A" in text
    assert "sensor probe in the middle shelf" in text
    [row] = re.findall(r"<tr class=\"action\" data-excursion=.*?</tr>", page)
    assert 'data-kind="high"' in row
    assert "Too warm for" in row
    assert (
        "What to do: Do not use the products inside; move them to a working fridge"
        " (Vaccine fridge B is in range), keep them apart, and ask QA for a decision." in row
    )
    lots = seeded.site.lots
    assert f'<a href="/ui/lots/{lots["a1"]}">Vaccine, lot A1</a>' in row
    assert f"#{lots['a1']}" not in text
    quarantine = re.search(r'data-section="quarantine".*?</section>', page, re.S)
    assert quarantine
    assert "Vaccine fridge A was too warm from" in quarantine[0]
    assert "Saint-Louis pharmacy" in visible(page.split('data-section="gateways"')[1])

    lot = (await client.get(f"/ui/lots/{lots['a1']}")).text
    lot_text = visible(lot.split("<main>")[1])
    for raw in RAW_IDS:
        assert raw not in lot_text, raw
    assert "lot id" not in lot_text
    assert "Vaccine fridge A" in lot_text
    assert "Too warm (still going on)" in lot_text

    unit = visible((await client.get("/ui/units/cc-fridge-a")).text.split("<main>")[1])
    assert "sensors: probe in the middle shelf" in unit
    assert "Vaccine fridge A · Saint-Louis pharmacy" in unit


@pytest.mark.integration
async def test_buttons_only_for_roles_that_may_use_them(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    a1 = seeded.site.lots["a1"]
    await sign_in(client, seeded.tokens["viewer"])
    viewer = (await client.get("/ui")).text
    assert 'class="ack"' not in viewer
    assert 'class="disposition"' not in viewer
    assert "waiting for QA" in viewer

    await sign_in(client, seeded.tokens["operator"])
    operator = (await client.get("/ui")).text
    assert 'class="ack"' in operator  # operators acknowledge
    assert 'class="disposition"' not in operator
    assert ">Release</button>" not in operator
    assert ">Reject</button>" not in operator
    lot = (await client.get(f"/ui/lots/{a1}")).text
    assert ">Release</button>" not in lot
    assert "Waiting for QA." in lot

    await sign_in(client, seeded.tokens["qa"])
    qa = (await client.get("/ui")).text
    assert qa.count('class="disposition"') == 2  # lots a1 and a2
    assert 'class="ack"' in qa
    qa_lot = (await client.get(f"/ui/lots/{a1}")).text
    assert ">Release</button>" in qa_lot
    # fridge A's excursion is open: the form carries the confirmation and says why
    assert "name='confirm_open_excursion'" in qa_lot
    assert "An excursion affecting this lot is still open: Vaccine fridge A: too warm" in qa_lot


@pytest.mark.integration
async def test_release_past_an_open_excursion_needs_confirmation_and_is_shown(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    a1 = seeded.site.lots["a1"]
    await sign_in(client, seeded.tokens["qa"])
    await give_password(seeded.site.url, "qa")
    body = {"decision": "release", "reason": "stability data covers 12 °C for 40 min",
            "signature": signature("qa", "released")}  # fmt: skip
    asked = await client.post(f"/ui/lots/{a1}/disposition", json=body, headers=ACTION)
    assert asked.status_code == 409
    detail = asked.json()["detail"]
    assert detail["confirm"] == "open_excursion"
    assert re.search(
        r"Vaccine fridge A: too warm since \d{4}-\d\d-\d\d \d\d:\d\d CES?T", detail["message"]
    ), detail["message"]
    assert (await client.get(f"/ui/lots/{a1}")).text.count('data-status="quarantined"') == 1

    done = await client.post(
        f"/ui/lots/{a1}/disposition", json={**body, "confirm_open_excursion": True},
        headers=ACTION,
    )  # fmt: skip
    assert done.status_code == 200, done.text
    [(actor, action, detail_row)] = await seeded.site.rows(
        "SELECT actor, action, detail FROM audit_log WHERE subject = %s"
        " AND action = 'release_during_open_excursion'", f"lot:{a1}"
    )  # fmt: skip
    assert (actor, action) == ("qa", "release_during_open_excursion")
    assert isinstance(detail_row, dict)
    assert detail_row["where"] == ["Vaccine fridge A"]

    await sign_in(client, seeded.tokens["viewer"])
    lot = (await client.get(f"/ui/lots/{a1}")).text
    decided = re.search(r"<section class='decided'.*?</section>", lot)
    assert decided
    text = visible(decided[0])
    assert "Released by qa on" in text
    assert re.search(r"on \d{4}-\d{2}-\d{2} \d{2}:\d{2}", text)
    assert "Why: stability data covers 12 °C for 40 min" in text
    assert "Signed as: released: approved for use." in text
    assert (
        "Released while an excursion was still open at Vaccine fridge A; qa confirmed it." in text
    )

    # a reject needs no confirmation: keeping stock out of use is always safe
    await sign_in(client, seeded.tokens["qa"])
    a2 = seeded.site.lots["a2"]
    rejected = await client.post(
        f"/ui/lots/{a2}/disposition", headers=ACTION,
        json={"decision": "reject", "reason": "too warm", "signature": signature("qa", "rejected")},
    )  # fmt: skip
    assert rejected.status_code == 200, rejected.text
    shown = visible((await client.get(f"/ui/lots/{a2}")).text)
    assert "Rejected by qa on" in shown
    assert "Released while" not in shown


async def test_an_unexpected_error_is_a_page_under_ui_and_plain_elsewhere() -> None:
    app = install_error_pages(FastAPI())

    @app.get("/ui/boom")
    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail: password=hunter2")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://cloud") as client:
        page = await client.get("/ui/boom", headers=BROWSER)
        api = await client.get("/v1/boom")
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "Something went wrong on the server" in page.text
    assert "hunter2" not in page.text  # the detail goes to the log, never to the page
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert api.status_code == 500
    assert api.text == "Internal Server Error"
