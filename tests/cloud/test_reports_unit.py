"""The unit temperature record through the API, against the real database: the PDF opens with
the expected pages and the chart's figures, the CSV's daily rows add up to the chart's samples,
excursions match ``/v1/excursions``, and the archive hands back the same bytes and hash."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
from pypdf import PdfReader

from tests.support.cloud_ingest import app_client
from tests.support.coldchain_seed import FRIDGE_A, SENSOR
from tests.support.web_dashboard import Seeded, seeded_site

pytestmark = pytest.mark.integration


@pytest.fixture
async def seeded(timescale_url: str) -> AsyncIterator[Seeded]:
    async with seeded_site(timescale_url) as s:
        yield s


@pytest.fixture
async def client(timescale_url: str, seeded: Seeded) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(timescale_url) as c:
        c.headers["Authorization"] = f"Bearer {seeded.tokens['viewer']}"
        login = await c.post("/ui/login", data={"token": seeded.tokens["viewer"]})
        assert login.status_code == 303
        yield c


async def make(client: httpx.AsyncClient, fmt: str, **span: str) -> tuple[dict[str, Any], bytes]:
    made = await client.post("/v1/reports/unit",
                             json={"location_id": FRIDGE_A, "format": fmt, **span})  # fmt: skip
    assert made.status_code == 201, made.text
    record: dict[str, Any] = made.json()
    content = await client.get(record["content_url"])
    assert content.status_code == 200
    return record, content.content


async def chart_of(client: httpx.AsyncClient, span: dict[str, str]) -> dict[str, Any]:
    answer = await client.get("/ui/history", params={"location": FRIDGE_A, **span})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_pdf_has_the_charts_figures_and_its_pages(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    span = seeded.span()
    record, pdf = await make(client, "pdf", **span)
    assert pdf.startswith(b"%PDF-")
    assert record["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert record["created_by"] == "viewer"
    assert record["parameters"]["location_id"] == FRIDGE_A
    pages = PdfReader(io.BytesIO(pdf)).pages
    texts = [p.extract_text() for p in pages]
    assert len(pages) >= 3  # summary and chart; daily record; events
    assert "Temperature record" in texts[0]
    assert f"page 1 of {len(pages)}" in texts[0]
    assert any("Daily record" in t for t in texts[1:])
    assert any("Excursions" in t for t in texts[1:])
    stats = (await chart_of(client, span))["stats"]
    figures = f"{stats['min']:.2f} / {stats['mean']:.2f} / {stats['max']:.2f} °C"
    assert figures in texts[0]
    assert f"{stats['mkt']:.2f} °C" in texts[0]
    assert str(stats["samples"]) in texts[0]
    excursions = (await client.get("/v1/excursions", params={"location_id": FRIDGE_A})).json()
    assert excursions, "the seeded warm-up opens an excursion"
    events = "\n".join(texts[1:])
    for x in excursions:
        assert x["level"] in events


async def test_csv_days_add_up_to_the_chart_and_list_the_excursions(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    span = seeded.span()
    _, body = await make(client, "csv", **span)
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    days = [r for r in rows if r["record"] == "day"]
    stats = (await chart_of(client, span))["stats"]
    assert sum(int(r["samples"]) for r in days) == stats["samples"] == 100
    assert {r["sensor_id"] for r in days} == {SENSOR[FRIDGE_A]}
    assert min(float(r["min_degC"]) for r in days) == stats["min"] == 5.0
    assert max(float(r["max_degC"]) for r in days) == stats["max"] == 12.0
    answer = await client.get("/v1/excursions", params={"location_id": FRIDGE_A})
    expected = {f"excursion {x['excursion_id']}" for x in answer.json()}
    assert {r["text"] for r in rows if r["record"] == "excursion"} == expected
    assert [r for r in rows if r["record"] == "gap"]  # the hour before the first reading


async def test_archive_returns_the_same_bytes_and_refuses_changes(
    client: httpx.AsyncClient, seeded: Seeded, timescale_url: str
) -> None:
    record, first = await make(client, "pdf", **seeded.span())
    again = await client.get(record["content_url"])
    assert again.content == first
    assert again.headers["etag"] == f'"{record["sha256"]}"'
    assert again.headers["content-type"] == "application/pdf"
    listed = (await client.get("/v1/reports", params={"kind": "unit"})).json()
    assert [r["report_id"] for r in listed] == [record["report_id"]]
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute("UPDATE report_archive SET title = 'x'")
        await conn.rollback()
        with pytest.raises(psycopg.errors.CheckViolation):  # a hash that does not fit the bytes
            await conn.execute(
                "INSERT INTO report_archive (kind, format, title, parameters, created_by,"
                " media_type, filename, size, sha256, content) VALUES ('unit', 'csv', 't', '{}',"
                " 'x', 'text/csv', 'f.csv', 1, sha256('b'), 'a')"
            )


async def test_bad_requests_are_refused_and_nothing_is_archived(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    span = seeded.span()
    for body in (
        {"location_id": "no-such-unit", **span},
        {"location_id": FRIDGE_A, "start": span["end"], "end": span["start"]},
        {"location_id": FRIDGE_A, **span, "format": "docx"},
        {"location_id": FRIDGE_A, "start": "2020-01-01T00:00:00Z", "end": span["end"]},
    ):
        answer = await client.post("/v1/reports/unit", json=body)
        assert answer.status_code == 422, (body, answer.text)
    assert (await client.get("/v1/reports")).json() == []
    assert (await client.get("/v1/reports/99/content")).status_code == 404
