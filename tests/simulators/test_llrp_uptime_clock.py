"""The simulator as a reader whose clock was never set: Uptime everywhere, from 0 on reboot."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from datetime import timedelta

import pytest

from coldtrace.cli import build_parser
from protocols.llrp.messages import spec_id_fields
from protocols.llrp.reports import ReaderEvent, status_of, tag_reports
from simulators.llrp_reader import LlrpReaderSimulator, SimulatorConfig
from tests.support.llrp_client import RawClient, T, rospec, scene

UP = timedelta(hours=3)


async def _connect(sim: LlrpReaderSimulator) -> tuple[RawClient, ReaderEvent]:
    r, w = await asyncio.open_connection("127.0.0.1", sim.port)
    client = RawClient(r, w)
    return client, ReaderEvent.from_message(await client.expect(T.READER_EVENT_NOTIFICATION))


async def _close(client: RawClient) -> None:
    client.writer.close()
    with contextlib.suppress(ConnectionError):
        await client.writer.wait_closed()


@pytest.mark.integration
@pytest.mark.timeout(30)
async def test_uptime_reader_reports_time_since_boot_and_restarts_it_on_reboot() -> None:
    config = SimulatorConfig(port=0, clock="uptime", uptime_at_start=UP)
    async with LlrpReaderSimulator(scene(), config) as sim:
        client, event = await _connect(sim)
        assert event.utc is None
        assert event.uptime is not None
        assert UP <= timedelta(microseconds=event.uptime) < UP + timedelta(seconds=5)
        await client.send(T.GET_READER_CAPABILITIES, b"\x00")
        general = (await client.expect(T.GET_READER_CAPABILITIES_RESPONSE)).param(137)
        assert general is not None
        assert struct.unpack_from(">H", general.value, 2)[0] & 0x4000 == 0  # no UTC clock
        await client.send(T.ADD_ROSPEC, b"", rospec())
        assert status_of(await client.expect(T.ADD_ROSPEC_RESPONSE)).ok
        await client.send(T.ENABLE_ROSPEC, spec_id_fields(1))
        await client.expect(T.ENABLE_ROSPEC_RESPONSE)
        reports = tag_reports(await client.expect(T.RO_ACCESS_REPORT))
        assert reports
        for report in reports:
            assert report.first_seen_utc is None
            assert report.first_seen_uptime is not None
            assert report.first_seen_uptime >= event.uptime - 1_000
        await sim.reboot()
        await _close(client)
        client, event = await _connect(sim)
        assert event.uptime is not None
        assert event.uptime < 1_000_000
        await _close(client)


def test_sim_llrp_clock_flag() -> None:
    assert build_parser().parse_args(["sim", "llrp", "--clock", "uptime"]).clock == "uptime"
    assert build_parser().parse_args(["sim", "llrp"]).clock == "utc"
