"""A service process killed (SIGKILL) while its alarm e-mail is in flight: the delivery's lease
runs out, another process sends it, and the person gets it exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from cloud.alarms.policy import Policy
from tests.support.alarm_receivers import smtp_sink
from tests.support.alarm_setup import add_channel, add_contact, add_policy, contact, steps, worker
from tests.support.cloud_processes import FAST_ENV, serve
from tests.support.coldchain_seed import FRIDGE_A, SENSOR, T0, Site, readings

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ALARM_ENV = {
    "COLDTRACE_CLOUD_ALARMS__LEASE": "PT10S",
    "COLDTRACE_CLOUD_ALARMS__SEND_TIMEOUT": "PT8S",
    "COLDTRACE_CLOUD_ALARMS__POLL_INTERVAL": "PT0.2S",
}


async def test_kill_9_mid_send_is_resent_once_after_the_lease(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ALARM_ENV.items():
        monkeypatch.setitem(FAST_ENV, name, value)
    async with smtp_sink() as smtp:
        smtp.hold = True  # the server takes the message and does not answer: a send in flight
        await add_channel(site, "ana-mail", smtp.url("ana@example.org"))
        await add_contact(site, "ana", "ana-mail")
        await add_policy(
            site, "site", Policy(steps=steps([contact("ana")]), kinds=["excursion_opened"])
        )
        await site.send(readings(SENSOR[FRIDGE_A], T0, [5.0] * 5 + [9.0] * 25))
        with serve(site.url, "--no-processor") as cloud:
            await asyncio.wait_for(smtp.holding.wait(), 30)
            cloud.kill()
        smtp.hold = False
        claimed = await site.rows("SELECT status, attempts, claimed_until FROM alarm_deliveries")
        assert [(r[0], r[1]) for r in claimed] == [("pending", 1)]
        lease_end = claimed[0][2]
        assert isinstance(lease_end, datetime)
        early = await worker(site).tick(datetime.now(UTC))
        assert early.sent == 0  # the lease still stands: nobody sends it twice meanwhile
        late = await worker(site).tick(max(lease_end, datetime.now(UTC)) + timedelta(seconds=1))
        assert late.sent == 1
    assert len(smtp.mails) == 1
    assert smtp.mails[0].recipients == ["ana@example.org"]
    final = await site.rows("SELECT status, attempts FROM alarm_deliveries")
    assert final == [("sent", 2)]
