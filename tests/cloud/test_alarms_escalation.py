"""Escalation through the database with real SMTP: steps and repeats until acknowledged, quiet
hours, rotas, a failing channel moving its alarm on, suppression windows, and several workers
sharing the outbox without sending anything twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

import pytest

from cloud.alarms.actions import acknowledge_alert, plan_window
from cloud.alarms.channels import AppriseNotifier
from cloud.alarms.config_store import put_doc
from cloud.alarms.policy import Policy, QuietHours, Target
from cloud.alarms.rota import Rota
from cloud.alarms.worker import AlarmWorker
from cloud.storage.database import make_pool
from tests.support.alarm_receivers import SmtpSink, smtp_sink
from tests.support.alarm_setup import (
    FAST,
    add_channel,
    add_contact,
    add_group,
    add_policy,
    contact,
    steps,
    worker,
)
from tests.support.coldchain_seed import FRIDGE_A, FRIDGE_B, SENSOR, SITE, T0, Site, readings

pytestmark = pytest.mark.integration

ACTION = [5.0] * 5 + [9.0] * 25  # action level: critical
ALERT_ONLY = [5.0] * 5 + [7.5] * 40  # inside action limits, above alert high 7: warning


async def people(site: Site, smtp: SmtpSink) -> None:
    for name in ("ana", "bo", "cy"):
        await add_channel(site, f"{name}-mail", smtp.url(f"{name}@example.org"))
        await add_contact(site, name, f"{name}-mail")


def to(smtp: SmtpSink) -> list[str]:
    return [m.recipients[0].split("@")[0] for m in smtp.mails]


async def excursion_alert(site: Site) -> int:
    rows = await site.rows(
        "SELECT alert_id FROM alerts WHERE kind = 'excursion_opened' ORDER BY alert_id"
    )
    return int(str(rows[0][0]))


async def test_steps_then_repeats_until_acknowledged(site: Site) -> None:
    async with smtp_sink() as smtp:
        await people(site, smtp)
        await add_group(site, "qa", "bo", "cy")
        policy = Policy(
            steps=steps(
                [contact("ana")], [Target(type="group", name="qa")], wait=timedelta(minutes=5)
            ),
            repeat_every=timedelta(minutes=10),
        )
        await add_policy(site, "site", policy)
        await site.send(readings(SENSOR[FRIDGE_A], T0, ACTION))
        w, now = worker(site), datetime.now(UTC)
        await w.tick(now)
        assert to(smtp) == ["ana"]
        await w.tick(now + timedelta(minutes=4))
        assert to(smtp) == ["ana"]  # still inside step 1's wait
        await w.tick(now + timedelta(minutes=5, seconds=1))
        assert sorted(to(smtp)[1:]) == ["bo", "cy"]
        await w.tick(now + timedelta(minutes=15, seconds=2))
        assert sorted(to(smtp)[3:]) == ["bo", "cy"]  # repeated
        assert "(reminder 1)" in smtp.mails[-1].subject
        async with site.pool.connection() as conn, conn.transaction():
            done = await acknowledge_alert(
                conn, await excursion_alert(site), actor="bo", comment="on my way", via="test"
            )
        assert done
        await w.tick(now + timedelta(hours=2))
    assert len(smtp.mails) == 5
    state = await site.rows(
        "SELECT a.finish_reason, al.acknowledged_by, al.ack_note FROM alarms a"
        " JOIN alerts al USING (alert_id) WHERE al.kind = 'excursion_opened'"
    )
    assert state == [("acknowledged", "bo", "on my way")]


async def test_quiet_hours_hold_warnings_but_not_action_level(site: Site) -> None:
    now = datetime.now(UTC)
    quiet = QuietHours(
        start=(now - timedelta(hours=1)).time().replace(microsecond=0),
        end=(now + timedelta(hours=1)).time().replace(microsecond=0),
    )
    async with smtp_sink() as smtp:
        await people(site, smtp)
        await add_policy(site, "site", Policy(steps=steps([contact("ana")]), quiet_hours=quiet))
        await site.send(readings(SENSOR[FRIDGE_A], T0, ALERT_ONLY))
        w, now = worker(site), datetime.now(UTC)
        await w.tick(now)
        assert smtp.mails == []
        held = await site.rows("SELECT held, next_at FROM alarms WHERE held IS NOT NULL")
        assert held
        assert held[0][0] == "quiet_hours"
        await site.send(readings(SENSOR[FRIDGE_A], T0 + timedelta(minutes=45), [9.5] * 20))
        await w.tick(now + timedelta(seconds=1))
        assert len(smtp.mails) == 1
        assert smtp.mails[0].subject.startswith("[CRITICAL]")
        await w.tick(now + timedelta(hours=1, seconds=5))  # quiet hours over: warnings go
    later = [m.subject for m in smtp.mails[1:] if m.subject.startswith("[WARNING]")]
    assert later
    assert all(s.startswith("[WARNING] Limit expected soon") for s in later), later
    # The alert-level page was superseded by the action-level one: it wakes nobody later.
    reasons = await site.rows(
        "SELECT a.finish_reason FROM alarms a JOIN alerts al"
        " USING (alert_id) WHERE al.kind = 'excursion_opened'"
    )
    assert reasons == [("cleared",)]


async def test_rota_sends_to_whoever_is_on_call(site: Site) -> None:
    now = datetime.now(UTC)
    today = now.date()
    async with smtp_sink() as smtp:
        await people(site, smtp)
        rota = Rota(members=["bo", "cy"], handover=time(0), shift_days=1, start_date=today)
        async with site.pool.connection() as conn, conn.transaction():
            await put_doc(conn, SITE, "rota", "on-call", rota, actor="admin")
        await add_policy(site, "site", Policy(steps=steps([Target(type="rota", name="on-call")])))
        await site.send(readings(SENSOR[FRIDGE_A], T0, ACTION))
        await worker(site).tick(datetime.now(UTC))
    assert to(smtp) == ["bo"]  # UTC site, hand-over at midnight: today is bo's first day


async def test_failing_channel_moves_alarm_on_and_raises_its_own(site: Site) -> None:
    async with smtp_sink() as smtp:
        await people(site, smtp)
        await add_channel(site, "ana-pager", "json://127.0.0.1:9/page")  # discard port: refused
        await add_contact(site, "ana", "ana-pager")
        await add_policy(
            site,
            "site",
            Policy(steps=steps([contact("ana")], [contact("bo")], wait=timedelta(minutes=30))),
        )
        await site.send(readings(SENSOR[FRIDGE_A], T0, ACTION))
        w, now = worker(site), datetime.now(UTC)
        first = await w.tick(now)
        assert (first.sent, first.failed) == (0, 1)
        second = await w.tick(now + timedelta(seconds=11))  # the retry fails: threshold 2
        assert second.failed == 1
        await w.tick(now + timedelta(seconds=12))  # bo now, not after 30 minutes
    assert "bo" in to(smtp)
    failing = await site.rows(
        "SELECT kind, severity, message FROM alerts WHERE kind = 'channel_failing'"
    )
    assert len(failing) == 1
    assert "ana-pager" in str(failing[0][2])
    log = await site.rows(
        "SELECT a.outcome FROM alarm_delivery_attempts a JOIN alarm_deliveries d"
        " USING (delivery_id) JOIN alarm_channels c USING (channel_id)"
        " WHERE c.name = 'ana-pager' AND d.alert_id = (SELECT min(alert_id) FROM alerts"
        " WHERE kind = 'excursion_opened') ORDER BY a.attempt"
    )
    assert [r[0] for r in log] == ["failed", "failed"]


async def test_suppression_holds_until_window_end_then_alarms_if_still_open(site: Site) -> None:
    now = datetime.now(UTC)
    end = now + timedelta(minutes=30)
    async with smtp_sink() as smtp:
        await people(site, smtp)
        await add_policy(site, "site", Policy(steps=steps([contact("ana")])))
        async with site.pool.connection() as conn, conn.transaction():
            await plan_window(
                conn,
                FRIDGE_A,
                kind="defrost",
                starts_at=now - timedelta(minutes=1),
                ends_at=end,
                reason="weekly defrost",
                actor="qa-1",
                now=now,
            )
        await site.send(readings(SENSOR[FRIDGE_A], T0, ACTION))
        w = worker(site)
        await w.tick(datetime.now(UTC))
        assert smtp.mails == []
        excursions = await site.rows("SELECT count(*) FROM excursions WHERE level = 'action'")
        assert excursions == [(1,)]  # judged as ever: the window hides nothing from the record
        await w.tick(end + timedelta(seconds=1))  # still open at the window's end: alarms now
    assert to(smtp) == ["ana"]
    audit = await site.rows(
        "SELECT actor, reason FROM audit_log WHERE action = 'suppression_planned'"
    )
    assert audit == [("qa-1", "weekly defrost")]


async def test_excursion_over_inside_window_does_not_wake_anyone(site: Site) -> None:
    now = datetime.now(UTC)
    end = now + timedelta(minutes=30)
    async with smtp_sink() as smtp:
        await people(site, smtp)
        await add_policy(site, "site", Policy(steps=steps([contact("ana")])))
        async with site.pool.connection() as conn, conn.transaction():
            await plan_window(
                conn,
                FRIDGE_A,
                kind="defrost",
                starts_at=now,
                ends_at=end,
                reason="defrost",
                actor="qa-1",
                now=now,
            )
        await site.send(readings(SENSOR[FRIDGE_A], T0, ACTION + [5.0] * 30))
        w = worker(site)
        await w.tick(now + timedelta(seconds=1))
        await w.tick(end + timedelta(seconds=1))
    assert smtp.mails == []
    reasons = await site.rows(
        "SELECT DISTINCT a.finish_reason FROM alarms a JOIN alerts al USING (alert_id)"
        " WHERE al.kind = 'excursion_opened'"
    )
    assert reasons == [("cleared",)]


async def test_window_rule_holds_when_the_worker_first_looks_after_the_window(
    site: Site,
) -> None:
    """No worker ran during the window (stopped, or busy): an excursion over inside it still
    wakes nobody, and one still open pages at once."""
    now = datetime.now(UTC)
    end = now + timedelta(minutes=30)
    async with smtp_sink() as smtp:
        await people(site, smtp)
        await add_policy(site, "site", Policy(steps=steps([contact("ana")])))
        async with site.pool.connection() as conn, conn.transaction():
            for unit in (FRIDGE_A, FRIDGE_B):
                await plan_window(conn, unit, kind="maintenance", starts_at=now, ends_at=end,
                                  reason="compressor service", actor="qa-1", now=now)  # fmt: skip
        await site.send(readings(SENSOR[FRIDGE_A], T0, ACTION + [5.0] * 30))  # over in it
        await site.send(readings(SENSOR[FRIDGE_B], T0, ACTION))  # still open at its end
        await worker(site).tick(end + timedelta(seconds=1))
    assert [m.subject for m in smtp.mails] == ["[CRITICAL] Temperature excursion — cc-fridge-b"]
    reasons = await site.rows(
        "SELECT al.location_id, a.finish_reason FROM alarms a JOIN alerts al USING (alert_id)"
        " WHERE al.kind = 'excursion_opened' ORDER BY al.location_id"
    )
    assert reasons == [(FRIDGE_A, "cleared"), (FRIDGE_B, None)]


async def test_two_workers_share_the_outbox_and_send_each_message_once(site: Site) -> None:
    async with smtp_sink() as smtp:
        for i in range(6):
            await add_channel(site, f"desk-{i}", smtp.url(f"desk{i}@example.org"))
            await add_contact(site, f"desk{i}", f"desk-{i}")
        await add_policy(site, "site", Policy(steps=steps([contact(f"desk{i}") for i in range(6)])))
        await site.send(readings(SENSOR[FRIDGE_A], T0, ACTION))
        other = make_pool(site.url, max_size=4)
        async with other:
            second = AlarmWorker(other, AppriseNotifier(FAST.send_timeout), FAST)
            now = datetime.now(UTC)
            for _ in range(3):
                await asyncio.gather(worker(site).tick(now), second.tick(now))
    assert sorted(to(smtp)) == sorted(f"desk{i}" for i in range(6))
    sent = await site.rows(
        "SELECT count(*), sum(attempts) FROM alarm_deliveries WHERE status = 'sent'"
    )
    assert sent == [(6, 6)]
