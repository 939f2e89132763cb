"""The alarms HTTP API: admins configure (secrets never echoed), operators and QA acknowledge,
QA plans windows and closes excursions; the one-time link acknowledges once, as its contact."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from cloud.alarms.store import enqueue
from cloud.auth.model import Role
from cloud.coldchain.alerts import NewAlert, raise_alert
from tests.support.ledger_api import Api, api
from tests.support.ledger_seed import FRIDGE, SITE
from tests.support.people import give_password, signature

pytestmark = pytest.mark.integration

SECRET = "Sup3r-s3cret-pw"
MAIL = f"mailtos://alarms:{SECRET}@smtp.example.org?to=qa@example.org"
NOT_ADMIN = (Role.VIEWER, Role.OPERATOR, Role.QA)


@pytest.fixture
async def client(timescale_url: str) -> AsyncIterator[tuple[Api, str]]:
    async with api(timescale_url) as a:
        yield a, timescale_url


async def rows(url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(sql, params)
        return list(await cur.fetchall())


async def test_channels_admin_only_and_secret_never_returned(client: tuple[Api, str]) -> None:
    a, url = client
    path = f"/v1/sites/{SITE}/alarm-channels/qa-mail"
    for role in NOT_ADMIN:
        refused = await a.client.put(path, json={"url": MAIL}, headers=a.as_(role))
        assert refused.status_code == 403, role
        assert (
            await a.client.get(f"/v1/sites/{SITE}/alarm-channels", headers=a.as_(role))
        ).status_code == 403
    assert (await a.client.put(path, json={"url": MAIL})).status_code == 401
    admin = a.as_(Role.ADMIN)
    created = await a.client.put(path, json={"url": MAIL}, headers=admin)
    assert created.status_code == 200, created.text
    assert created.json()["service"] == "E-Mail"
    listed = await a.client.get(f"/v1/sites/{SITE}/alarm-channels", headers=admin)
    for response in (created, listed):
        assert SECRET not in response.text
        assert "smtp.example.org" in response.text
    audit = await rows(url, "SELECT detail::text FROM audit_log WHERE action = 'alarm_channel_put'")
    assert audit
    assert all(SECRET not in r[0] for r in audit)
    bad = await a.client.put(path, json={"url": "bogus://nothing"}, headers=admin)
    assert bad.status_code == 422
    missing = await a.client.put(
        "/v1/sites/nowhere/alarm-channels/x", json={"url": MAIL}, headers=admin
    )
    assert missing.status_code == 404


async def test_documents_are_checked_against_the_site(client: tuple[Api, str]) -> None:
    a, _ = client
    admin = a.as_(Role.ADMIN)
    base = f"/v1/sites/{SITE}"
    orphan = await a.client.put(
        f"{base}/alarm-contacts/ana",
        json={"display_name": "Ana", "channels": ["ana-mail"]},
        headers=admin,
    )
    assert orphan.status_code == 422
    assert "ana-mail" in orphan.text
    await a.client.put(f"{base}/alarm-channels/ana-mail", json={"url": MAIL}, headers=admin)
    ok = await a.client.put(
        f"{base}/alarm-contacts/ana",
        json={"display_name": "Ana", "channels": ["ana-mail"]},
        headers=admin,
    )
    assert ok.status_code == 200, ok.text
    rota = {"members": ["ana"], "handover": "07:30", "shift_days": 7, "start_date": "2026-01-05"}
    assert (
        await a.client.put(f"{base}/on-call-rotas/week", json=rota, headers=admin)
    ).status_code == 200
    policy = {
        "steps": [
            {"notify": [{"type": "rota", "name": "week"}], "wait": "PT10M"},
            {"notify": [{"type": "group", "name": "qa"}]},
        ],
        "repeat_every": "PT30M",
        "quiet_hours": {"start": "22:00", "end": "06:00"},
    }
    refused = await a.client.put(f"{base}/alarm-policies/site", json=policy, headers=admin)
    assert refused.status_code == 422
    assert "group 'qa'" in refused.text
    assert (
        await a.client.put(f"{base}/alarm-groups/qa", json={"members": ["ana"]}, headers=admin)
    ).status_code == 200
    saved = await a.client.put(f"{base}/alarm-policies/site", json=policy, headers=admin)
    assert saved.status_code == 200, saved.text
    in_use = await a.client.delete(f"{base}/alarm-groups/qa", headers=admin)
    assert in_use.status_code == 422
    assert "policy 'site'" in in_use.text
    wrong = await a.client.put(f"{base}/alarm-policies/x", json={"steps": []}, headers=admin)
    assert wrong.status_code == 422
    on_call = await a.client.get(f"{base}/on-call", headers=a.as_(Role.VIEWER))
    assert on_call.status_code == 200
    assert on_call.json()[0]["contact"] == "ana"
    listed = await a.client.get(f"{base}/alarm-policies", headers=admin)
    assert listed.json()[0]["spec"]["repeat_every"] == "PT30M"


async def alert_with_link(url: str) -> tuple[int, str]:
    """An alert with one queued delivery; returns the alert and the link's token."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute(
            "INSERT INTO alarm_channels (site_id, name, url, service, created_by) VALUES"
            " (%s, 'desk', 'json://127.0.0.1:9/x', 'JSON', 'admin')",
            (SITE,),
        )
        alert_id = await raise_alert(
            conn,
            NewAlert(
                kind="no_data",
                severity="warning",
                at=datetime.now(UTC),
                message="fridge silent",
                dedup_key="t:1",
                location_id=FRIDGE,
            ),
        )
        assert alert_id is not None
        await enqueue(
            conn, alert_id, [("desk", "ana")], site_id=SITE, step=0, round_=0, now=datetime.now(UTC)
        )
        cur = await conn.execute("SELECT ack_token FROM alarm_deliveries")
        row = await cur.fetchone()
        await conn.commit()
    assert row is not None
    return alert_id, str(row[0])


async def test_one_time_link_acknowledges_once_as_the_contact(client: tuple[Api, str]) -> None:
    a, url = client
    alert_id, token = await alert_with_link(url)
    page = await a.client.get(f"/alarms/ack/{token}")
    assert page.status_code == 200
    assert "<form" in page.text
    assert "fridge silent" in page.text
    assert await rows(url, "SELECT acknowledged_at FROM alerts") == [(None,)]  # GET changes nil
    done = await a.client.post(f"/alarms/ack/{token}", data={"comment": "door closed"})
    assert done.status_code == 200
    assert "Acknowledged" in done.text
    assert await rows(url, "SELECT acknowledged_by, ack_note FROM alerts") == [
        ("contact:ana", "door closed")
    ]
    again = await a.client.post(f"/alarms/ack/{token}", data={})
    assert again.status_code == 409
    unknown = await a.client.get("/alarms/ack/" + "x" * 32)
    assert unknown.status_code == 404
    state = await a.client.get(f"/v1/alarms/{alert_id}", headers=a.as_(Role.VIEWER))
    assert state.json()["acknowledged_by"] == "contact:ana"
    assert state.json()["deliveries"][0]["channel"] == "desk"
    assert state.json()["deliveries"][0]["log"] == []
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute(
            "INSERT INTO alarm_delivery_attempts (delivery_id, attempt, outcome, error)"
            " SELECT delivery_id, 1, 'failed', 'connection refused' FROM alarm_deliveries"
        )
        await conn.commit()
    logged = await a.client.get(f"/v1/alarms/{alert_id}", headers=a.as_(Role.VIEWER))
    [attempt] = logged.json()["deliveries"][0]["log"]
    assert (attempt["attempt"], attempt["outcome"]) == (1, "failed")
    assert attempt["error"] == "connection refused"


async def test_acknowledge_roles_and_comment(client: tuple[Api, str]) -> None:
    a, url = client
    alert_id, _ = await alert_with_link(url)
    path = f"/v1/alarms/{alert_id}/acknowledge"
    viewer = await a.client.post(path, json={"comment": "x"}, headers=a.as_(Role.VIEWER))
    assert viewer.status_code == 403
    ok = await a.client.post(path, json={"comment": "checked"}, headers=a.as_(Role.OPERATOR))
    assert ok.status_code == 200
    assert ok.json() == {"acknowledged": [alert_id]}
    assert (
        await a.client.post("/v1/alarms/999999/acknowledge", json={}, headers=a.as_(Role.QA))
    ).status_code == 404
    audit = await rows(url, "SELECT actor, reason FROM audit_log WHERE action = 'acknowledge'")
    assert audit == [("operator-1", "checked")]


async def test_suppression_windows_by_qa(client: tuple[Api, str]) -> None:
    a, _ = client
    now = datetime.now(UTC)
    body = {
        "kind": "defrost",
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "reason": "weekly defrost",
    }
    path = f"/v1/locations/{FRIDGE}/suppressions"
    assert (await a.client.post(path, json=body, headers=a.as_(Role.OPERATOR))).status_code == 403
    made = await a.client.post(path, json=body, headers=a.as_(Role.QA))
    assert made.status_code == 201, made.text
    assert made.json()["created_by"] == "qa-1"
    active = await a.client.get("/v1/suppressions?active=true", headers=a.as_(Role.VIEWER))
    assert [w["window_id"] for w in active.json()] == [made.json()["window_id"]]
    too_long = dict(body, ends_at=(now + timedelta(days=8)).isoformat())
    assert (await a.client.post(path, json=too_long, headers=a.as_(Role.QA))).status_code == 409
    cancelled = await a.client.post(
        f"/v1/suppressions/{made.json()['window_id']}/cancel",
        json={"reason": "done early"},
        headers=a.as_(Role.QA),
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["cancelled_by"] == "qa-1"
    assert (
        await a.client.get("/v1/suppressions?active=true", headers=a.as_(Role.VIEWER))
    ).json() == []


async def test_closing_an_action_excursion_needs_cause_and_action(client: tuple[Api, str]) -> None:
    a, url = client
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "INSERT INTO excursions (location_id, sensor_id, kind, level, started_at, ended_at)"
            " VALUES (%s, 's', 'high', 'action', now() - interval '2 hours', now() - interval"
            " '1 hour'), (%s, 's', 'high', 'action', now(), NULL) RETURNING excursion_id",
            (FRIDGE, FRIDGE),
        )
        ended, still_open = (int(r[0]) for r in await cur.fetchall())
        await conn.commit()
    qa = a.as_(Role.QA)
    unsigned = await a.client.post(
        f"/v1/excursions/{ended}/closure", json={"root_cause": "door_left_open"}, headers=qa
    )
    assert unsigned.status_code == 422
    assert "e-signature" in unsigned.text
    await give_password(url, "qa-1", full_name="Quinn Quality")
    signed = signature("qa-1", "reviewed")
    bare = await a.client.post(
        f"/v1/excursions/{ended}/closure",
        json={"root_cause": "door_left_open", "signature": signed},
        headers=qa,
    )
    assert bare.status_code == 409
    assert "corrective action" in bare.text
    vague = await a.client.post(
        f"/v1/excursions/{ended}/closure",
        json={"root_cause": "other", "corrective_action": "staff_retrained", "signature": signed},
        headers=qa,
    )
    assert vague.status_code == 409
    body = {
        "root_cause": "door_left_open",
        "root_cause_detail": "door ajar after delivery",
        "corrective_action": "staff_retrained",
        "comment": "stock assessed: released",
        "signature": signed,
    }
    wrong = await a.client.post(
        f"/v1/excursions/{ended}/closure",
        json=body | {"signature": signed | {"password": "not my password"}},
        headers=qa,
    )
    assert wrong.status_code == 401
    assert (
        await a.client.post(
            f"/v1/excursions/{ended}/closure", json=body, headers=a.as_(Role.OPERATOR)
        )
    ).status_code == 403
    closed = await a.client.post(f"/v1/excursions/{ended}/closure", json=body, headers=qa)
    assert closed.status_code == 201, closed.text
    assert closed.json()["closed_by"] == "qa-1"
    [sig] = closed.json()["signatures"]
    assert (sig["printed_name"], sig["meaning"], sig["entry_ids"]) == (
        "Quinn Quality", "reviewed", []
    )  # fmt: skip
    assert (
        await a.client.post(f"/v1/excursions/{ended}/closure", json=body, headers=qa)
    ).status_code == 409
    assert (
        await a.client.post(f"/v1/excursions/{still_open}/closure", json=body, headers=qa)
    ).status_code == 409
    on_excursion = await a.client.get(f"/v1/excursions/{ended}", headers=a.as_(Role.VIEWER))
    assert on_excursion.json()["closure"]["corrective_action"] == "staff_retrained"
    assert [s["signature_id"] for s in on_excursion.json()["signatures"]] == [sig["signature_id"]]
    intact = await a.client.get(
        f"/v1/signatures/{sig['signature_id']}/verify", headers=a.as_(Role.VIEWER)
    )
    assert intact.json()["intact"] is True
    assert (await a.client.get(f"/v1/excursions/{still_open}", headers=a.as_(Role.VIEWER))).json()[
        "closure"
    ] is None
    shown = await a.client.get(f"/v1/excursions/{ended}/closure", headers=a.as_(Role.VIEWER))
    assert shown.json()["root_cause_detail"] == "door ajar after delivery"
    audit = await rows(
        url,
        "SELECT actor, subject, detail->>'corrective_action' FROM audit_log"
        " WHERE action = 'excursion_closed'",
    )
    assert audit == [("qa-1", f"excursion:{ended}", "staff_retrained")]
