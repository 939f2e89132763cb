"""The dashboard shows alarms still escalating (with their step) and planned suppression."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.alarms.actions import plan_window
from cloud.alarms.policy import Policy
from cloud.web.config import WebSettings
from cloud.web.permissions import Can
from cloud.web.router import render_sections
from tests.support.alarm_receivers import smtp_sink
from tests.support.alarm_setup import add_channel, add_contact, add_policy, contact, steps, worker
from tests.support.coldchain_seed import FRIDGE_A, FRIDGE_B, SENSOR, T0, Site, readings

pytestmark = pytest.mark.integration


async def test_overview_shows_escalation_and_windows(site: Site) -> None:
    now = datetime.now(UTC)
    async with site.pool.connection() as conn, conn.transaction():
        await plan_window(conn, FRIDGE_B, kind="defrost", starts_at=now + timedelta(hours=1),
                          ends_at=now + timedelta(hours=2), reason="monthly <defrost>",
                          actor="qa-1", now=now)  # fmt: skip
    async with smtp_sink() as smtp:
        await add_channel(site, "ana-mail", smtp.url("ana@example.org"))
        await add_contact(site, "ana", "ana-mail")
        await add_policy(site, "site", Policy(steps=steps([contact("ana")], [contact("ana")])))
        await site.send(readings(SENSOR[FRIDGE_A], T0, [5.0] * 5 + [9.0] * 25))
        await worker(site).tick(datetime.now(UTC))
    async with site.pool.connection() as conn:
        html = (await render_sections(conn, WebSettings(), Can(acknowledge=True)))["alarms"]
    assert "<b title=" in html
    assert "Temperature out of range</b>: The temperature left its allowed range." in html
    assert "What to do: Check the unit now" in html
    assert "site: step 1, next" in html
    assert "1 sent" in html
    assert 'class="ack-note"' in html  # an optional comment with the acknowledgement
    assert "monthly &lt;defrost&gt;" in html  # escaped
    assert "planned" in html
    assert FRIDGE_B in html
