"""Our reader simulator against an independent LLRP client: pyllrp (MIT, pure Python, its own
codec and its own TagInventory workflow). What pyllrp decodes is what a third party reads from
our bytes; the tag inventory it takes must hold the tags standing at the door."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pyllrp import pyllrp as llrp
from pyllrp.LLRPConnector import LLRPConnector
from pyllrp.TagInventory import TagInventory

from simulators.llrp_reader import LlrpReaderSimulator, SimulatorConfig
from simulators.scene import ParkedTags, Scene, dock_door
from tests.support.llrp import EPOCH, load

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TAGS = load(5, cases=6)


def scene() -> Scene:
    s = dock_door(seed=5)
    s.add(ParkedTags(TAGS, x=0.0, y=0.3, spread=0.5))  # strong reads on both antennas
    return s


def config() -> SimulatorConfig:
    return SimulatorConfig(port=0, speed=1.0, epoch=EPOCH)


def params_of(message: Any, kind: type) -> list[Any]:
    return [p for p in message.Parameters if isinstance(p, kind)]


def capabilities_and_config(port: int) -> tuple[Any, Any, Any]:
    """GET_READER_CAPABILITIES, GET_READER_CONFIG (All) and the second client's refusal."""
    with LLRPConnector() as conn:
        conn.connect("127.0.0.1", port)
        caps = conn.transact(
            llrp.GET_READER_CAPABILITIES_Message(
                RequestedData=llrp.GetReaderCapabilitiesRequestedData.All
            )
        )
        cfg = conn.transact(
            llrp.GET_READER_CONFIG_Message(RequestedData=llrp.GetReaderConfigRequestedData.All)
        )
        second = LLRPConnector()
        try:
            second.connect("127.0.0.1", port)
        except OSError as err:  # pyllrp raises EnvironmentError(status, text)
            refused: Any = err
        else:
            second.disconnect()
            refused = None
    return caps, cfg, refused


async def test_pyllrp_reads_our_capabilities_and_configuration() -> None:
    async with LlrpReaderSimulator(scene(), config()) as sim:
        caps, cfg, refused = await asyncio.to_thread(capabilities_and_config, sim.port)
    assert caps.success()
    (general,) = params_of(caps, llrp.GeneralDeviceCapabilities_Parameter)
    assert general.MaxNumberOfAntennaSupported == 4
    (regulatory,) = params_of(caps, llrp.RegulatoryCapabilities_Parameter)
    assert regulatory.CountryCode == 840
    assert cfg.success()
    assert len(params_of(cfg, llrp.AntennaProperties_Parameter)) == 4
    assert len(params_of(cfg, llrp.AntennaConfiguration_Parameter)) == 4
    assert len(params_of(cfg, llrp.GPIPortCurrentState_Parameter)) == 4
    (report,) = params_of(cfg, llrp.ROReportSpec_Parameter)
    assert report.N == 1
    assert isinstance(refused, OSError)
    assert (
        refused.args[0]
        == llrp.ConnectionAttemptStatusType.Failed_A_Client_Initiated_Connection_Already_Exists
    )


def inventory(port: int) -> tuple[set[str], list[Any]]:
    """pyllrp's own workflow: reset, configure, ADD/ENABLE/DISABLE/DELETE_ROSPEC."""
    reader = TagInventory("127.0.0.1")
    reader.connector = LLRPConnector()
    reader.connector.connect("127.0.0.1", port)
    try:
        response = reader.connector.transact(
            llrp.SET_READER_CONFIG_Message(ResetToFactoryDefault=True)
        )
        assert response.success()
        reader.readWaitMilliseconds = 400
        tags, _details = reader.GetTagInventory()
        return set(tags), list(reader.otherMessages)
    finally:
        reader.Disconnect()


async def test_pyllrp_takes_a_tag_inventory_from_our_reader() -> None:
    async with LlrpReaderSimulator(scene(), config()) as sim:
        tags, others = await asyncio.to_thread(inventory, sim.port)
    assert {t.upper() for t in tags} == set(TAGS)
    assert not [m for m in others if isinstance(m, llrp.ERROR_MESSAGE_Message)]
