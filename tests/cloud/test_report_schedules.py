"""Scheduled reports against the real database and a real SMTP server (aiosmtpd): a schedule
made through the API (admin, audited) produces the last complete period's report once, archived
as the schedule's, e-mailed with the file attached (the same bytes as the archive) and its
SHA-256 and link in the text; a refused delivery is retried on the next run, then left alone."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from pypdf import PdfReader

from cloud.auth.model import Role
from cloud.auth.service import add_user
from cloud.reports.schedules import JobSettings, run_schedules
from tests.support.alarm_receivers import Mail, SmtpSink, smtp_sink
from tests.support.alarm_setup import add_channel
from tests.support.cloud_ingest import app_client
from tests.support.coldchain_seed import FRIDGE_A, FRIDGE_B, ROOM, SITE
from tests.support.web_dashboard import Seeded, seeded_site

pytestmark = pytest.mark.integration
CFG = JobSettings(
    default_silence=timedelta(minutes=15), calibration_lead=timedelta(days=14),
    public_url="https://coldtrace.example.org", send_timeout=timedelta(seconds=10),
)  # fmt: skip


@pytest.fixture
async def seeded(timescale_url: str) -> AsyncIterator[Seeded]:
    async with seeded_site(timescale_url) as s:
        yield s


@pytest.fixture
async def sink(seeded: Seeded) -> AsyncIterator[SmtpSink]:
    async with smtp_sink() as s:
        await add_channel(seeded.site, "qa-mail", s.url("qa@example.org"))
        yield s


@pytest.fixture
async def admin(timescale_url: str, seeded: Seeded) -> AsyncIterator[httpx.AsyncClient]:
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        token = await add_user(conn, "admin", Role.ADMIN)
        await conn.commit()
    async with app_client(timescale_url) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


def attachments(mail: Mail) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for part in mail.message.walk():
        name, payload = part.get_filename(), part.get_payload(decode=True)
        if name and isinstance(payload, bytes):
            found[name] = payload
    return found


async def test_schedule_makes_each_period_once_and_mails_it(
    admin: httpx.AsyncClient, sink: SmtpSink, seeded: Seeded, timescale_url: str
) -> None:
    unit = await admin.post("/v1/report-schedules", json={
        "site_id": SITE, "kind": "unit", "frequency": "daily", "location_id": FRIDGE_A,
        "format": "csv", "channel": "qa-mail"})  # fmt: skip
    assert unit.status_code == 201, unit.text
    cal = await admin.post("/v1/report-schedules", json={
        "site_id": SITE, "kind": "calibration", "frequency": "weekly",
        "channel": "qa-mail"})  # fmt: skip
    assert cal.status_code == 201, cal.text
    # a day later, "yesterday" is the day of the seeded readings
    later = datetime.now(UTC) + timedelta(days=1)
    sink.refuse = True
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        assert await run_schedules(conn, later, CFG) == {"made": 2, "sent": 0, "failed": 2}
        sink.refuse = False
        assert await run_schedules(conn, later, CFG) == {"made": 0, "sent": 2, "failed": 0}
        assert await run_schedules(conn, later, CFG) == {"made": 0, "sent": 0, "failed": 0}
        cur = await conn.execute(
            "SELECT d.attempts, d.last_error IS NULL, a.created_by, a.kind FROM report_deliveries d"
            " JOIN report_archive a USING (report_id) ORDER BY a.kind"
        )
        rows = await cur.fetchall()
    assert [(r[0], r[1], r[3]) for r in rows] == [(2, True, "calibration"), (2, True, "unit")]
    assert {r[2] for r in rows} == {f"schedule:{unit.json()['schedule_id']}",
                                    f"schedule:{cal.json()['schedule_id']}"}  # fmt: skip
    assert len(sink.mails) == 2
    listed = (await admin.get("/v1/reports", params={"kind": "unit"})).json()
    (record,) = listed
    archived = (await admin.get(record["content_url"])).content
    (mail,) = [m for m in sink.mails if "Temperature record" in m.subject]
    assert attachments(mail) == {record["filename"]: archived}
    assert hashlib.sha256(archived).hexdigest() in mail.text
    assert f"https://coldtrace.example.org/v1/reports/{record['report_id']}/content" in mail.text
    days = [line for line in archived.decode().splitlines() if line.startswith("day,")]
    assert sum(int(line.split(",")[4]) for line in days) == 100  # the seeded readings


async def test_schedules_are_admin_only_and_checked(
    admin: httpx.AsyncClient, sink: SmtpSink, seeded: Seeded, timescale_url: str
) -> None:
    good = {"site_id": SITE, "kind": "mkt", "frequency": "monthly", "channel": "qa-mail"}
    qa = {"Authorization": f"Bearer {seeded.tokens['qa']}"}
    viewer = await admin.post("/v1/report-schedules", json=good, headers=qa)
    assert viewer.status_code == 403
    for bad in ({"channel": "nobody"}, {"site_id": "no-site"}, {"location_id": FRIDGE_A},
                {"kind": "unit", "location_id": "no-unit"}, {"frequency": "hourly"}):  # fmt: skip
        answer = await admin.post("/v1/report-schedules", json={**good, **bad})
        assert answer.status_code == 422, (bad, answer.text)
    made = await admin.post("/v1/report-schedules", json=good)
    assert made.status_code == 201
    done = await admin.post(f"/v1/report-schedules/{made.json()['schedule_id']}/disable")
    assert done.json()["disabled_at"] is not None
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        assert await run_schedules(conn, datetime.now(UTC), CFG) == {"made": 0, "sent": 0,
                                                                     "failed": 0}  # fmt: skip
        cur = await conn.execute(
            "SELECT action FROM audit_log WHERE subject LIKE 'report_schedule:%%' ORDER BY audit_id"
        )
        assert [r[0] for r in await cur.fetchall()] == ["report_schedule.create",
                                                        "report_schedule.disable"]  # fmt: skip


async def test_a_site_schedule_covers_every_storage_unit(
    admin: httpx.AsyncClient, sink: SmtpSink, seeded: Seeded, timescale_url: str
) -> None:
    made = await admin.post("/v1/report-schedules", json={
        "site_id": SITE, "kind": "unit", "frequency": "daily", "format": "csv",
        "channel": "qa-mail"})  # fmt: skip
    assert made.status_code == 201, made.text
    printed = await admin.post("/v1/report-schedules", json={
        "site_id": SITE, "kind": "unit", "frequency": "daily", "channel": "qa-mail"})  # fmt: skip
    assert printed.status_code == 201, printed.text
    later = datetime.now(UTC) + timedelta(days=1)
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        assert await run_schedules(conn, later, CFG) == {"made": 2, "sent": 2, "failed": 0}
    (pdf,) = [c for m in sink.mails for n, c in attachments(m).items() if n.endswith(".pdf")]
    pages = [p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages]
    # each unit's part starts on a page of its own, with the unit in its heading
    starts = [next(i for i, page in enumerate(pages) if f"({unit})" in page)
              for unit in (FRIDGE_A, FRIDGE_B, ROOM)]  # fmt: skip
    assert starts == sorted(set(starts))
    (mail,) = [m for m in sink.mails if any(n.endswith(".csv") for n in attachments(m))]
    ((name, content),) = attachments(mail).items()
    assert name.startswith(f"units-{SITE}-")
    days = [line.split(",") for line in content.decode().splitlines()[1:]]
    per_unit: dict[str, int] = {}
    for row in days:
        if row[1] == "day":
            per_unit[row[0]] = per_unit.get(row[0], 0) + int(row[5])
    assert per_unit == {FRIDGE_A: 100, FRIDGE_B: 100, ROOM: 100}
    listed = (await admin.get("/v1/reports", params={"kind": "unit"})).json()
    assert listed[0]["parameters"]["location_ids"] == sorted(per_unit)
