"""Alarm delivery end to end: an excursion judged by the real processor reaches a real SMTP server
and a real HTTP receiver through Apprise, saying what a person needs to act."""

from __future__ import annotations

import asyncio
import queue
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud.alarms.actions import acknowledge_alert
from cloud.alarms.policy import Policy
from tests.support.alarm_receivers import SmtpSink, http_sink, smtp_sink
from tests.support.alarm_setup import (
    add_channel,
    add_contact,
    add_policy,
    channel,
    contact,
    steps,
    worker,
)
from tests.support.coldchain_seed import FRIDGE_A, SENSOR, T0, Site, readings

pytestmark = pytest.mark.integration

WARM = [5.0] * 5 + [9.0] * 25 + [9.4]  # action-level high from 08:05, confirmed after 15 min


async def test_excursion_reaches_email_and_webhook_with_what_to_act_on(site: Site) -> None:
    async with smtp_sink() as smtp, http_sink() as hook:
        await add_channel(site, "ana-mail", smtp.url("ana@example.org"))
        await add_channel(site, "ops-hook", hook.url("/alarm"))
        await add_contact(site, "ana", "ana-mail")
        await add_policy(site, "site", Policy(steps=steps([contact("ana"), channel("ops-hook")])))
        await site.send(readings(SENSOR[FRIDGE_A], T0, WARM))
        result = await worker(site).tick()
        assert (result.sent, result.failed) == (2, 0)
        again = await worker(site).tick()  # nothing is sent twice
        assert (again.queued, again.sent) == (0, 0)

    assert len(smtp.mails) == 1
    mail = smtp.mails[0]
    assert mail.recipients == ["ana@example.org"]
    assert mail.subject == "[CRITICAL] Temperature excursion — cc-fridge-a"
    text = mail.text
    for expected in (
        "Unit: cc-fridge-a (cc-fridge-a), site Cold site, sensor cc-fridge-a/t",
        "action high excursion open",
        "What to do: Check the unit now: door shut, power on, display normal.",
        "Since: 2026-05-04 08:05 UTC",
        "Now: 9.4 °C at 2026-05-04 08:30 UTC",
        "Limits: alert 3 to 7 °C, action 2 to 8 °C",
        "Lots affected (2):",
        "lot A1: 10 units, quarantined",
        "lot A2: 10 units, quarantined",
        "Acknowledge: https://coldtrace.example.org/alarms/ack/",
        "Alarm list: https://coldtrace.example.org/ui",
    ):
        assert expected in text, (expected, text)

    [(path, headers, body)] = hook.posts
    assert path == "/alarm"
    assert headers["content-type"].startswith("application/json")
    assert body["title"] == mail.subject
    assert "Lots affected (2):" in body["message"]
    assert "/alarms/ack/" in body["message"]
    # The two messages carry different one-time links (each person's own).
    link = next(w for w in text.split() if "/alarms/ack/" in w)
    assert link not in body["message"]

    log = await site.rows(
        "SELECT c.name, d.status, d.attempts, d.ack_token IS NULL, a.outcome"
        " FROM alarm_deliveries d JOIN alarm_channels c USING (channel_id)"
        " JOIN alarm_delivery_attempts a USING (delivery_id) ORDER BY c.name"
    )
    assert log == [("ana-mail", "sent", 1, True, "sent"), ("ops-hook", "sent", 1, True, "sent")]
    routed = await site.rows(
        "SELECT al.kind, a.policy, a.route, a.finish_reason FROM alarms a"
        " JOIN alerts al USING (alert_id) ORDER BY al.alert_id"
    )
    assert ("quarantine", "site", "none", "not_routed") in routed
    assert ("excursion_opened", "site", "page", None) in routed


async def warm_fridge_paging_ana_who_refuses(site: Site, smtp: SmtpSink) -> None:
    """Ana is the one step of the site's policy, her mail server refuses, fridge A warms."""
    smtp.refuse = True
    await add_channel(site, "ana-mail", smtp.url("ana@example.org"))
    await add_contact(site, "ana", "ana-mail")
    await add_policy(site, "site", Policy(steps=steps([contact("ana")])))
    await site.send(readings(SENSOR[FRIDGE_A], T0, WARM))


async def test_refused_mail_is_retried_with_backoff_then_given_up(site: Site) -> None:
    async with smtp_sink() as smtp:
        await warm_fridge_paging_ana_who_refuses(site, smtp)
        w = worker(site)
        now = datetime.now(UTC)
        first = await w.tick(now)
        assert (first.sent, first.failed) == (0, 1)
        assert (await w.tick(now + timedelta(seconds=5))).failed == 0  # waits for its backoff
        smtp.refuse = False
        later = await w.tick(now + timedelta(seconds=11))
        assert (later.sent, later.failed) == (1, 0)
    assert len(smtp.mails) == 1
    attempts = await site.rows(
        "SELECT attempt, outcome, error IS NOT NULL FROM alarm_delivery_attempts ORDER BY attempt"
    )
    assert attempts == [(1, "failed", True), (2, "sent", False)]


async def test_alert_without_policy_is_recorded_not_sent(site: Site) -> None:
    async with smtp_sink() as smtp:
        await add_channel(site, "ana-mail", smtp.url("ana@example.org"))
        await site.send(readings(SENSOR[FRIDGE_A], T0, WARM))
        result = await worker(site).tick()
    assert (result.queued, result.sent) == (0, 0)
    reasons = await site.rows("SELECT DISTINCT finish_reason FROM alarms")
    assert reasons == [("no_policy",)]


async def test_a_broken_policy_document_is_recorded_and_retried_not_fatal(site: Site) -> None:
    async with site.pool.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO alarm_config (site_id, kind, name, spec, updated_by)"
            " VALUES ('cc-site', 'policy', 'broken', '{\"steps\": \"not a list\"}', 'psql')"
        )
    await site.send(readings(SENSOR[FRIDGE_A], T0, WARM))
    now = datetime.now(UTC)
    result = await worker(site).tick(now)
    assert result.queued == 0
    rows = await site.rows("SELECT problems, next_at > %s, finished_at FROM alarms", now)
    assert rows
    assert all("ValidationError" in str(r[0]) and r[1] is True and r[2] is None for r in rows)


async def test_mqtt_channel_carries_every_step_through_one_kept_connection(
    site: Site, mqtt_url: str
) -> None:
    broker = urlsplit(mqtt_url)
    topic = f"site/panel/{uuid.uuid4().hex[:8]}"
    got: queue.Queue[bytes] = queue.Queue()
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, msg: got.put(bytes(msg.payload))
    client.connect(broker.hostname or "127.0.0.1", broker.port or 1883)
    client.subscribe(topic, qos=1)
    client.loop_start()
    try:
        await asyncio.sleep(0.3)  # the subscription is in place
        await add_channel(site, "panel", f"mqtt://{broker.hostname}:{broker.port}/{topic}")
        await add_policy(site, "site", Policy(steps=steps([channel("panel")], [channel("panel")])))
        await site.send(readings(SENSOR[FRIDGE_A], T0, WARM))
        w, now = worker(site), datetime.now(UTC)
        assert (await w.tick(now)).sent == 1
        assert (await w.tick(now + timedelta(minutes=10, seconds=1))).sent == 1
        messages = [got.get(timeout=5) for _ in range(2)]
    finally:
        client.loop_stop()
        client.disconnect()
    assert all(b"Lots affected (2):" in m for m in messages)
    assert all(b"cc-fridge-a" in m for m in messages)


async def test_a_retry_is_not_sent_once_someone_acknowledged(site: Site) -> None:
    async with smtp_sink() as smtp:
        await warm_fridge_paging_ana_who_refuses(site, smtp)
        w, now = worker(site), datetime.now(UTC)
        assert (await w.tick(now)).failed == 1
        async with site.pool.connection() as conn, conn.transaction():
            await acknowledge_alert(conn, await opened_alert(site), actor="bo", comment=None,
                                    via="test")  # fmt: skip
        smtp.refuse = False
        await w.tick(now + timedelta(seconds=11))
    assert smtp.mails == []
    rows = await site.rows(
        "SELECT d.status, d.last_error, c.consecutive_failures FROM alarm_deliveries d"
        " JOIN alarm_channels c USING (channel_id)"
    )
    assert rows == [("failed", "not sent: acknowledged before it went out", 1)]


async def opened_alert(site: Site) -> int:
    rows = await site.rows("SELECT alert_id FROM alerts WHERE kind = 'excursion_opened'")
    return int(str(rows[0][0]))


async def test_push_through_a_self_hosted_ntfy_server(site: Site) -> None:
    async with http_sink() as ntfy:
        await add_channel(site, "push", f"ntfy://127.0.0.1:{ntfy.port}/coldtrace-cc-site")
        await add_policy(site, "site", Policy(steps=steps([channel("push")])))
        await site.send(readings(SENSOR[FRIDGE_A], T0, WARM))
        assert (await worker(site).tick()).sent == 1
    [(path, _, body)] = ntfy.posts
    assert path == "/"
    assert body["topic"] == "coldtrace-cc-site"
    assert body["title"] == "[CRITICAL] Temperature excursion — cc-fridge-a"
    assert "Limits: alert 3 to 7 °C, action 2 to 8 °C" in body["message"]
    assert "/alarms/ack/" in body["message"]
