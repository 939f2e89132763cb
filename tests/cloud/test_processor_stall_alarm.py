"""A stalled stream reaches people through the site's alarm channels, like any critical alarm:
the gateway's site is found from the alert, the default route pages, the mail names the gateway,
the batch and the error, and says what to do meanwhile."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.alarms.policy import Policy
from cloud.config import ProcessorSettings
from cloud.ingest.writer import store_batch
from cloud.processing.processor import Processor
from cloud.processing.steps import ProcessingBatch
from protocols.batch import Batch, Sequenced
from tests.support.alarm_receivers import smtp_sink
from tests.support.alarm_setup import add_channel, add_contact, add_policy, contact, steps, worker
from tests.support.coldchain_seed import FRIDGE_A, SENSOR, T0, Site, readings

pytestmark = pytest.mark.integration

QUICK = ProcessorSettings(
    retry_initial=timedelta(milliseconds=50), retry_max=timedelta(milliseconds=50), stall_after=2
)


@dataclass
class Poison:
    name: str = "poison"

    async def apply(self, conn: AsyncConnection[TupleRow], batch: ProcessingBatch) -> None:
        raise RuntimeError("no storage profile for cc-fridge-a")


async def test_a_stalled_stream_pages_through_the_sites_channels(site: Site) -> None:
    async with smtp_sink() as smtp:
        await add_channel(site, "ana-mail", smtp.url("ana@example.org"))
        await add_contact(site, "ana", "ana-mail")
        await add_policy(site, "site", Policy(steps=steps([contact("ana")])))
        await _stall(site)
        result = await worker(site).tick()
        assert (result.sent, result.failed) == (1, 0)
        assert (await worker(site).tick()).sent == 0  # paged once, not per failure

    (mail,) = smtp.mails
    assert mail.recipients == ["ana@example.org"]
    assert mail.subject == "[CRITICAL] Processing stalled"
    for expected in (
        "processing of gateway cc-gw stalled: batch 1 failed 2 times",
        "no storage profile for cc-fridge-a",
        "What to do: Read the units' own thermometers until this is fixed",
        "Site: Cold site",
    ):
        assert expected in mail.text, (expected, mail.text)
    [(kind, policy, route)] = await site.rows(
        "SELECT al.kind, a.policy, a.route FROM alarms a JOIN alerts al USING (alert_id)"
        " JOIN alarm_deliveries d USING (alert_id)"
    )
    assert (kind, policy, route) == ("stream_stalled", "site", "page")


async def _stall(site: Site) -> None:
    async with await AsyncConnection.connect(site.url) as conn:
        part = readings(SENSOR[FRIDGE_A], T0, [5.0] * 3)
        batch = Batch(
            gateway_id=site.gateway_id, boot_id=site.boot, sent_at=part[-1].received_at,
            records=[Sequenced(seq=i + 1, record=r) for i, r in enumerate(part)],
        )  # fmt: skip
        await store_batch(conn, batch)
    # a processor whose only step fails on every batch, in place of the site's own
    processor = Processor(site.pool, [Poison()], QUICK, listen_url=site.url)
    for _ in range(40):
        await processor.drain()
        if await site.rows("SELECT 1 FROM processor_streams WHERE stalled_since IS NOT NULL"):
            return
        await asyncio.sleep(0.06)
    raise AssertionError("the stream did not stall")


async def test_a_stall_that_is_over_stops_escalating(site: Site) -> None:
    async with smtp_sink() as smtp:
        await add_channel(site, "ana-mail", smtp.url("ana@example.org"))
        await add_contact(site, "ana", "ana-mail")
        await add_policy(site, "site", Policy(steps=steps([contact("ana")], [contact("ana")])))
        await _stall(site)
        now = datetime.now(UTC)
        assert (await worker(site).tick(now)).sent == 1
        # the cause is fixed: the batch is processed (no failing step any more), stall over
        await _recover(site)
        later = await worker(site).tick(now + timedelta(minutes=11))  # step 2 would be due
        assert (later.sent, later.queued) == (0, 0)
    assert len(smtp.mails) == 1
    [(reason,)] = await site.rows(
        "SELECT a.finish_reason FROM alarms a JOIN alerts al USING (alert_id)"
        " WHERE al.kind = 'stream_stalled'"
    )
    assert reason == "cleared"


async def _recover(site: Site) -> None:
    """Drains with a processor whose steps all succeed until the stall is over (the stream is
    due again only after its retry delay, which a fast first drain can come before)."""
    processor = Processor(site.pool, [], QUICK, listen_url=site.url)
    for _ in range(40):
        await processor.drain()
        if not await site.rows("SELECT 1 FROM processor_streams WHERE stalled_since IS NOT NULL"):
            return
        await asyncio.sleep(0.06)
    raise AssertionError("the stall did not end")
