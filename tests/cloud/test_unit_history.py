"""A storage unit's history page and its data over HTTP, against the real database: the
resolution follows the range (raw, hourly and daily rollups kept by the rollup job), gaps and
excursions are listed, the CSV holds what the readings API answers, bad requests are refused."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

import cloud.web.history
from cloud.jobs.rollups import refresh_rollups
from cloud.web.config import WebSettings
from cloud.web.router import build_router
from tests.support.cloud_ingest import app_client
from tests.support.coldchain_seed import FRIDGE_A, SENSOR
from tests.support.people import give_password, signature
from tests.support.web_dashboard import Seeded, seeded_site

pytestmark = pytest.mark.integration


@pytest.fixture
async def seeded(timescale_url: str) -> AsyncIterator[Seeded]:
    async with seeded_site(timescale_url) as s:
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            await refresh_rollups(conn, datetime.now(UTC), timedelta(0))
        yield s


@pytest.fixture
async def client(timescale_url: str, seeded: Seeded) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(timescale_url) as c:
        login = await c.post("/ui/login", data={"token": seeded.tokens["viewer"]})
        assert login.status_code == 303
        yield c


def span(seeded: Seeded, before: timedelta, after: timedelta = timedelta(0)) -> dict[str, str]:
    """[start of the readings - before, now + after), as query parameters."""
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1) + after
    return {"start": (seeded.start - before).isoformat(), "end": end.isoformat()}


async def history(client: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    answer = await client.get("/ui/history", params={"location": FRIDGE_A, **params})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def _raw_history_has_limits_excursion_gap_and_figures(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    body = await history(client, **span(seeded, timedelta(hours=1)))
    assert body["resolution"] == "raw"
    assert body["limits"] == {"action_low": 2.0, "action_high": 8.0, "alert_low": 3.0,
                              "alert_high": 7.0}  # fmt: skip
    (series,) = body["series"]
    assert series["sensor_id"] == SENSOR[FRIDGE_A]
    assert len(series["time"]) == 100  # every reading, no gap marker inside
    assert series["mean"][:60] == [5.0] * 60
    assert series["mean"][60:] == [12.0] * 40
    # the hour before the first reading is a gap; the last minute (silence 15 min) is not
    (gap,) = body["gaps"]
    assert gap[1] == seeded.start.timestamp()
    assert [x["level"] for x in body["excursions"] if x["kind"] == "high"][-1] == "action"
    stats = body["stats"]
    assert (stats["samples"], stats["min"], stats["max"]) == (100, 5.0, 12.0)
    assert stats["mean"] == pytest.approx((60 * 5 + 40 * 12) / 100, abs=1e-3)
    assert 8.0 < stats["mkt"] < 12.0  # above the mean: warm readings weigh more


async def _long_ranges_come_from_rollups(client: httpx.AsyncClient, seeded: Seeded) -> None:
    week = await history(client, **span(seeded, timedelta(days=6)))
    assert week["resolution"] == "hourly"
    samples = sum(n for s in week["series"] for n in s["samples"])
    assert samples == 100
    assert max(v for v in week["series"][0]["max"] if v is not None) == 12.0
    year = await history(client, **span(seeded, timedelta(days=364)))
    assert year["resolution"] == "daily"
    assert sum(n for s in year["series"] for n in s["samples"]) == 100
    assert year["stats"]["max"] == 12.0
    assert year["gaps"][0][0] == year["start"]  # the months before the first reading


async def _api(client: httpx.AsyncClient, token: str, **params: str) -> dict[str, Any]:
    answer = await client.get(
        f"/v1/locations/{FRIDGE_A}/readings", params=params,
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


async def _csv_matches_the_readings_api(client: httpx.AsyncClient, seeded: Seeded) -> None:
    token = seeded.tokens["viewer"]
    raw_range = span(seeded, timedelta(minutes=10))
    answer = await client.get("/ui/history.csv", params={"location": FRIDGE_A, **raw_range})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    header, *rows = _parse(answer.text)
    assert header == ["time", "sensor_id", "value_degC"]
    api = await _api(client, token, **raw_range)
    expected = [
        (datetime.fromisoformat(r["time"]), s["sensor_id"], r["value"])
        for s in api["series"] for r in s["readings"]
    ]  # fmt: skip
    assert [(datetime.fromisoformat(t), s, float(v)) for t, s, v in rows] == expected

    # a week: hourly rollups against the API's hourly buckets computed from the readings
    week = span(seeded, timedelta(days=6, hours=23))
    start = datetime.fromisoformat(week["start"]).replace(minute=0, second=0)
    week["start"] = start.isoformat()
    answer = await client.get("/ui/history.csv", params={"location": FRIDGE_A, **week})
    header, *rows = _parse(answer.text)
    assert header[:3] == ["bucket_start", "sensor_id", "samples"]
    api = await _api(client, token, bucket="PT1H", **week)
    buckets = [b for s in api["series"] for b in s["buckets"] if b["samples"]]
    assert len(rows) == len(buckets) >= 2
    for row, b in zip(rows, buckets, strict=True):
        assert datetime.fromisoformat(row[0]) == datetime.fromisoformat(b["start"])
        assert int(row[2]) == b["samples"]
        got = [float(v) for v in row[3:]]
        assert got == pytest.approx([b["min"], b["avg"], b["max"]], abs=1e-9)


async def _page_and_chart_assets(client: httpx.AsyncClient, seeded: Seeded) -> None:
    overview = await client.get("/ui")
    assert f"href='/ui/units/{FRIDGE_A}'" in overview.text
    assert overview.text.count('<text class="scale"') == 6  # each sparkline's top and bottom
    page = await client.get(f"/ui/units/{FRIDGE_A}")
    assert page.status_code == 200
    assert "data-limit='action-high'>action high 8.0 °C" in page.text
    assert "/ui/vendor/uPlot.iife.min.js" in page.text
    assert "<script>" not in page.text  # the CSP allows no inline script
    assert "style=" not in page.text  # nor inline style
    assert (await client.get("/ui/units/nowhere")).status_code == 404
    lib = await client.get("/ui/vendor/uPlot.iife.min.js")
    assert lib.status_code == 200
    assert lib.headers["content-type"].startswith("text/javascript")
    assert "uPlot" in lib.text
    licence = await client.get("/ui/vendor/uPlot-LICENSE.txt")
    assert "MIT" in licence.text or "Permission is hereby granted" in licence.text
    assert (await client.get("/ui/vendor/package.json")).status_code == 404
    assert (await client.get("/ui/vendor/..%2Fpackage.json")).status_code == 404
    assert (await client.get("/ui/static/charts.js")).status_code == 200


async def _bad_requests_are_refused(client: httpx.AsyncClient, seeded: Seeded) -> None:
    now = datetime.now(UTC)
    cases = [
        ({"location": FRIDGE_A, "start": now.isoformat(), "end": now.isoformat()}, 422),
        ({"location": FRIDGE_A, "start": (now - timedelta(days=1200)).isoformat(),
          "end": now.isoformat()}, 422),
        ({"location": FRIDGE_A, "start": "2026-01-01T00:00:00", "end": now.isoformat()}, 422),
        ({"location": "nowhere", "start": (now - timedelta(hours=1)).isoformat(),
          "end": now.isoformat()}, 404),
        ({"start": (now - timedelta(hours=1)).isoformat(), "end": now.isoformat()}, 422),
    ]  # fmt: skip
    for params, status in cases:
        for path in ("/ui/history", "/ui/history.csv"):
            answer = await client.get(path, params=params)
            assert answer.status_code == status, (path, params, answer.text)
    client.cookies.clear()
    params = {"location": FRIDGE_A, **span(seeded, timedelta(0))}
    assert (await client.get("/ui/history", params=params)).status_code == 401


async def _annotations(client: httpx.AsyncClient, seeded: Seeded, url: str) -> None:
    """A maintenance window, an acknowledgement, a QA release and an excursion's closure show
    on the unit's chart."""
    t = seeded.start + timedelta(minutes=10)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute(
            "INSERT INTO alarm_suppressions (location_id, kind, starts_at, ends_at, reason,"
            " created_by) VALUES (%s, 'maintenance', %s, %s, 'door seal replaced', 'tech')",
            (FRIDGE_A, t, t + timedelta(minutes=20)),
        )
        cur = await conn.execute(
            "UPDATE alerts SET acknowledged_at = now(), acknowledged_by = 'op', ack_note = 'seen'"
            " WHERE location_id = %s RETURNING alert_id", (FRIDGE_A,),
        )  # fmt: skip
        acknowledged = len(await cur.fetchall())
        cur = await conn.execute(
            "INSERT INTO excursions (location_id, sensor_id, kind, level, started_at, ended_at)"
            " VALUES (%s, 's', 'high', 'action', %s, %s) RETURNING excursion_id",
            (FRIDGE_A, t, t + timedelta(minutes=15)),
        )
        row = await cur.fetchone()
        assert row is not None
        await conn.execute(
            "INSERT INTO excursion_closures (excursion_id, root_cause, root_cause_detail,"
            " corrective_action, closed_by) VALUES (%s, 'door_left_open', 'door ajar',"
            " 'staff_retrained', 'qa')",
            (row[0],),
        )
        await conn.commit()
    assert acknowledged >= 1
    client.cookies.clear()
    login = await client.post("/ui/login", data={"token": seeded.tokens["qa"]})
    assert login.status_code == 303
    lot = seeded.site.lots["a1"]
    await give_password(seeded.site.url, "qa")
    done = await client.post(
        f"/ui/lots/{lot}/disposition",
        json={"decision": "release", "reason": "data reviewed", "confirm_open_excursion": True,
              "signature": signature("qa", "released")},
        headers={"X-Coldtrace-Action": "1"},
    )  # fmt: skip
    assert done.status_code == 200, done.text
    body = await history(client, **span(seeded, timedelta(hours=1), after=timedelta(minutes=5)))
    notes = {(n["kind"], n["text"]): n for n in body["annotations"]}
    window = notes["maintenance", "maintenance (alarms suppressed): door seal replaced, by tech"]
    assert (window["at"], window["end"]) == (t.timestamp(), (t + timedelta(minutes=20)).timestamp())
    ack = [n for (kind, _), n in notes.items() if kind == "acknowledged"]
    assert len(ack) == 1  # alerts acknowledged together are one note
    assert ack[0]["text"].startswith("acknowledged by op")
    assert ack[0]["text"].endswith(": seen")
    assert ("disposition", "released lot A1 by qa: data reviewed") in notes
    closure = notes["closure", "excursion closed by qa: root cause door left open (door ajar);"
                    " corrective action staff retrained"]  # fmt: skip
    assert closure["at"] == (t + timedelta(minutes=15)).timestamp()  # at the excursion's end
    # another unit's chart does not show them
    other = await client.get(
        "/ui/history", params={"location": "cc-room", **span(seeded, timedelta(hours=1))}
    )
    assert other.json()["annotations"] == []


# One seeded site per test costs ~15 s on a loaded machine: each test covers several checks.
async def test_history_data_resolutions_and_csv(
    client: httpx.AsyncClient, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _raw_history_has_limits_excursion_gap_and_figures(client, seeded)
    # more raw readings than a chart takes: the hourly rollups, never a silently cut series
    monkeypatch.setattr(cloud.web.history, "MAX_RAW_ROWS", 99)
    crowded = await history(client, **span(seeded, timedelta(0)))
    assert crowded["resolution"] == "hourly"
    assert sum(n for s in crowded["series"] for n in s["samples"]) == 100
    monkeypatch.undo()
    await _long_ranges_come_from_rollups(client, seeded)
    await _csv_matches_the_readings_api(client, seeded)


async def test_page_assets_annotations_and_refusals(
    client: httpx.AsyncClient, seeded: Seeded, timescale_url: str
) -> None:
    await _page_and_chart_assets(client, seeded)
    await _bad_requests_are_refused(client, seeded)
    await _annotations(client, seeded, timescale_url)


async def test_vendor_files_come_from_the_configured_folder(tmp_path: Path) -> None:
    """The image installs uPlot outside the package (COLDTRACE_WEB_VENDOR_DIR); a missing
    install answers 503 with what to run, never a 500."""
    dist = tmp_path / "uplot" / "dist"
    dist.mkdir(parents=True)
    (dist / "uPlot.min.css").write_text(".uplot{}", "utf-8")
    app = FastAPI()
    app.include_router(build_router(WebSettings(vendor_dir=tmp_path)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ui") as client:
        css = await client.get("/ui/vendor/uPlot.min.css")
        assert (css.status_code, css.text) == (200, ".uplot{}")
        assert css.headers["content-type"].startswith("text/css")
        missing = await client.get("/ui/vendor/uPlot.iife.min.js")
        assert missing.status_code == 503
        assert "make web-deps" in missing.text
