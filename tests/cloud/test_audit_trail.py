"""Audit trail viewer (issue 17.3): filters by who, what (prefix), object (prefix) and when,
over the API and the dashboard, with CSV export that a spreadsheet cannot turn into formulas."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator

import psycopg
import pytest
from pypdf import PdfReader

from cloud.auth.model import Role
from cloud.web.session import COOKIE
from tests.support.ledger_api import Api, api
from tests.support.people import PASSWORD, give_password

pytestmark = pytest.mark.integration


@pytest.fixture
async def audited(timescale_url: str) -> AsyncIterator[Api]:
    """A trail: two entries from last year, a user added, failed and good sign-ins."""
    async with api(timescale_url) as a:
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            await conn.execute(
                "INSERT INTO audit_log (at, actor, action, subject, reason, detail) VALUES"
                " ('2025-03-01T10:00Z', 'qa-1', 'release', 'lot:7', '=HYPERLINK(\"x\")', '{}'),"
                " ('2025-03-02T10:00Z', 'operator-1', 'count.confirm', 'count:3', 'monthly',"
                "  '{\"entries\": 2}')"
            )
            await conn.commit()
        created = await a.client.post(
            "/v1/users", json={"name": "nina", "role": "viewer"}, headers=a.as_(Role.ADMIN)
        )
        assert created.status_code == 201
        await give_password(timescale_url, "qa-1")
        await a.client.post("/ui/login", data={"username": "qa-1", "password": "wrong"})
        assert (
            await a.client.post("/ui/login", data={"username": "qa-1", "password": PASSWORD})
        ).status_code == 303
        yield a


async def test_api_filters_by_who_what_object_and_when(audited: Api) -> None:
    a = audited
    qa = a.as_(Role.QA)

    async def found(**params: str) -> list[tuple[str, str, str]]:
        r = await a.client.get("/v1/audit", params=params, headers=qa)
        assert r.status_code == 200, r.text
        return [(x["actor"], x["action"], x["subject"]) for x in r.json()]

    assert await found(actor="admin-1") == [("admin-1", "user.add", "user:nina")]
    assert await found(action="account.*") == [
        ("qa-1", "account.sign_in", "user:qa-1"),
        ("qa-1", "account.auth_failed", "user:qa-1"),
    ]
    assert await found(subject="lot:*") == [("qa-1", "release", "lot:7")]
    assert await found(subject="count:3", actor="operator-1") == [
        ("operator-1", "count.confirm", "count:3")
    ]
    march = await found(since="2025-03-02T00:00:00Z", until="2025-03-03T00:00:00Z")
    assert march == [("operator-1", "count.confirm", "count:3")]
    # "%" and "_" are literal, not wildcards
    assert await found(actor="qa_1") == []
    assert await found(actor="%") == []
    backwards = await a.client.get(
        "/v1/audit", params={"since": "2025-03-02T00:00:00Z", "until": "2025-03-01T00:00:00Z"},
        headers=qa,
    )  # fmt: skip
    assert backwards.status_code == 422
    # paging: everything older than the newest entry
    newest = (await a.client.get("/v1/audit", params={"limit": 1}, headers=qa)).json()[0]
    older = await a.client.get("/v1/audit", params={"before": newest["audit_id"]}, headers=qa)
    assert newest["audit_id"] not in [x["audit_id"] for x in older.json()]
    # QA and admins read the trail; operators and viewers do not
    assert (await a.client.get("/v1/audit", headers=a.as_(Role.OPERATOR))).status_code == 403
    assert (await a.client.get("/v1/audit", headers=a.as_(Role.ADMIN))).status_code == 200


async def test_csv_export_is_the_filtered_trail_and_safe_in_a_spreadsheet(audited: Api) -> None:
    a = audited
    r = await a.client.get(
        "/v1/audit.csv", params={"since": "2025-01-01T00:00:00Z", "until": "2025-12-31T00:00:00Z"},
        headers=a.as_(Role.QA),
    )  # fmt: skip
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["actor"], x["action"], x["subject"]) for x in rows] == [
        ("operator-1", "count.confirm", "count:3"),
        ("qa-1", "release", "lot:7"),
    ]
    assert rows[0]["at"] == "2025-03-02T10:00:00+00:00"
    assert json.loads(rows[0]["detail"]) == {"entries": 2}
    assert rows[1]["reason"] == '\'=HYPERLINK("x")'  # not a formula


async def test_dashboard_audit_page_and_export(audited: Api, timescale_url: str) -> None:
    a = audited
    # qa-1 is signed in with a password (the fixture)
    page = await a.client.get("/ui/audit", params={"action": "account.*"})
    assert page.status_code == 200
    assert "Audit trail" in page.text
    assert page.text.count("<tr data-audit=") == 2
    assert "account.auth_failed" in page.text
    assert "/ui/audit.csv?action=account.%2A" in page.text
    by_day = await a.client.get("/ui/audit", params={"from": "2025-03-01", "to": "2025-03-01"})
    assert by_day.text.count("<tr data-audit=") == 1
    assert "lot:7" in by_day.text
    exported = await a.client.get("/ui/audit.csv", params={"subject": "lot:*"})
    assert exported.status_code == 200
    assert [x["subject"] for x in csv.DictReader(io.StringIO(exported.text))] == ["lot:7"]
    bad = await a.client.get("/ui/audit", params={"from": "2025-03-02", "to": "2025-03-01"})
    assert bad.status_code == 422
    # an operator's session is refused
    a.client.cookies.clear()
    await a.client.post("/ui/login", data={"token": a.tokens[Role.OPERATOR]})
    assert COOKIE in a.client.cookies
    assert (await a.client.get("/ui/audit")).status_code == 403
    a.client.cookies.clear()
    assert (await a.client.get("/ui/audit")).headers["location"] == "/ui/login"


async def test_pdf_export_holds_the_filtered_entries(audited: Api) -> None:
    a = audited
    r = await a.client.get("/v1/audit.pdf", params={"subject": "lot:*"}, headers=a.as_(Role.QA))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(r.content))
    text = " ".join(page.extract_text() for page in reader.pages)
    assert "Audit trail" in text
    assert "lot:7" in text
    assert "count:3" not in text  # filtered out
    assert "Object lot:*" in text
    assert "qa-1" in text
    # the dashboard's export gives the same document for the signed-in QA user
    page = await a.client.get("/ui/audit.pdf", params={"subject": "lot:*"})
    assert page.status_code == 200
    assert page.content.startswith(b"%PDF")
    assert (await a.client.get("/v1/audit.pdf", headers=a.as_(Role.OPERATOR))).status_code == 403
