"""Our reader simulator against a second independent LLRP client: llrpkit (MIT, asyncio, its
own codec). It reads our capabilities and full configuration into its typed messages and runs
an inventory with its own ROSpec; every tag standing at the door must come back. It also reads
our ERROR_MESSAGE M_UnsupportedVersion to a message sent in LLRP 1.1."""

from __future__ import annotations

import pytest
from llrpkit.client import LLRPClient
from llrpkit.protocol import messages
from llrpkit.protocol.enums import StatusCode
from llrpkit.reader import Reader

from simulators.llrp_reader import LlrpReaderSimulator, SimulatorConfig
from simulators.scene import ParkedTags, Scene, dock_door
from tests.support.llrp import EPOCH, load

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TAGS = load(6, cases=6)


def scene() -> Scene:
    s = dock_door(seed=6)
    s.add(ParkedTags(TAGS, x=0.0, y=0.3, spread=0.5))
    return s


async def test_llrpkit_reads_our_configuration_and_inventories_every_tag() -> None:
    config = SimulatorConfig(port=0, speed=1.0, epoch=EPOCH)
    async with (
        LlrpReaderSimulator(scene(), config) as sim,
        Reader("127.0.0.1", sim.port) as reader,
    ):
        assert (reader.max_antennas, reader.firmware) == (4, "coldtrace-sim-1")
        settings = await reader.get_config()
        reports = [report async for report in reader.inventory(duration=1.5)]
    assert len(settings.antenna_properties) == 4
    assert len(settings.antenna_configurations) == 4
    assert len(settings.gpi_port_current_states) == 4
    assert settings.keepalive_spec is not None
    assert {r.epc.hex().upper() for r in reports} == set(TAGS)
    assert all(r.antenna in (1, 2) and r.rssi_dbm is not None for r in reports)


async def test_llrpkit_reads_our_refusal_of_llrp_1_1_and_goes_on_in_1_0_1() -> None:
    """A message in LLRP 1.1 (version 2) gets ERROR_MESSAGE M_UnsupportedVersion, as llrpkit's
    own codec reads it, and the connection stays for the same request in LLRP 1.0.1."""
    config = SimulatorConfig(port=0, speed=1.0, epoch=EPOCH)
    async with (
        LlrpReaderSimulator(scene(), config) as sim,
        LLRPClient("127.0.0.1", sim.port) as client,
    ):
        newer = messages.GET_READER_CAPABILITIES(requested_data=1)
        newer.protocol_version = 2
        refused = await client.transact(newer)
        accepted = await client.transact(messages.GET_READER_CAPABILITIES(requested_data=1))
    assert isinstance(refused, messages.ERROR_MESSAGE)
    assert refused.llrp_status.status_code == StatusCode.M_UnsupportedVersion
    assert "LLRP 1.0.1" in refused.llrp_status.error_description
    assert isinstance(accepted, messages.GET_READER_CAPABILITIES_RESPONSE)
    assert accepted.llrp_status.status_code == StatusCode.M_Success
