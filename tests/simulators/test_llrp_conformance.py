"""The reader simulator against the LLRP specification and a real reader's answers: ROSpec
states, RequestedData, the default report spec, version negotiation, RST versus orderly close.

The real reader is the Impinj R420 of the shared golden frames (edgexfoundry
device-rfid-llrp-go testdata, Apache-2.0): "All" must return the parameter types it returns.
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from protocols.llrp.frame import Frame
from protocols.llrp.messages import Message, decode_message, spec_id_fields
from protocols.llrp.reports import ReaderEvent, StatusCode, status_of, tag_reports
from protocols.llrp.specs import ReportSpec
from simulators.llrp_device import DEFAULT_REPORT
from tests.support.llrp_client import T, reader, rospec

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

FRAMES = Path(__file__).resolve().parents[2].parent / "shared" / "llrp-frames"


def real_reader(name: str, type_: int) -> Message | None:
    path = FRAMES / f"{name}-000.bytes"
    if not path.is_file():
        return None
    return decode_message(Frame(1, type_, 1, path.read_bytes()))


def kinds(message: Message) -> list[int]:
    return [p.type for p in message.params]


def rospec_state(message: Message) -> list[int]:
    return [p.value[5] for p in message.params if p.type == 177]


async def test_get_rospecs_reports_the_current_state() -> None:
    async with reader() as (_, client):
        await client.send(T.ADD_ROSPEC, b"", rospec(start=0, duration_ms=60_000))
        await client.expect(T.ADD_ROSPEC_RESPONSE)
        states = []
        for command in (None, T.ENABLE_ROSPEC, T.START_ROSPEC, T.STOP_ROSPEC, T.DISABLE_ROSPEC):
            if command is not None:
                await client.send(command, spec_id_fields(1))
                reply = await client.expect(command + 10, skip=(T.KEEPALIVE, T.RO_ACCESS_REPORT))
                assert status_of(reply).ok
            await client.send(T.GET_ROSPECS)
            answer = await client.expect(
                T.GET_ROSPECS_RESPONSE, skip=(T.KEEPALIVE, T.RO_ACCESS_REPORT)
            )
            states += rospec_state(answer)
    assert states == [0, 1, 2, 1, 0]  # Disabled, Inactive, Active (running), Inactive, Disabled


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (1, [218]),
        (2, [221] * 4),
        (3, [222] * 4),
        (4, [237]),
        (5, [244]),
        (6, [239]),
        (7, [217]),
        (8, [220]),
        (9, [225] * 4),
        (10, [219] * 4),
        (11, [226]),
    ],
)
async def test_get_reader_config_honours_requested_data(
    requested: int, expected: list[int]
) -> None:
    async with reader() as (_, client):
        await client.send(T.GET_READER_CONFIG, struct.pack(">HBHH", 0, requested, 0, 0))
        answer = await client.expect(T.GET_READER_CONFIG_RESPONSE)
    assert status_of(answer).ok
    assert kinds(answer)[1:] == expected


async def test_get_reader_config_all_returns_what_a_real_reader_returns() -> None:
    async with reader() as (_, client):
        await client.send(T.GET_READER_CONFIG, bytes(7))
        answer = await client.expect(T.GET_READER_CONFIG_RESPONSE)
        await client.send(T.GET_READER_CONFIG, struct.pack(">HBHH", 3, 2, 0, 0))
        one = await client.expect(T.GET_READER_CONFIG_RESPONSE)
        await client.send(T.GET_READER_CONFIG, struct.pack(">HBHH", 9, 0, 0, 0))
        missing = await client.expect(T.GET_READER_CONFIG_RESPONSE)
    r420 = real_reader("GetReaderConfigResponse", T.GET_READER_CONFIG_RESPONSE)
    if r420 is not None:
        assert kinds(answer) == kinds(r420)
    assert [struct.unpack_from(">H", p.value, 1)[0] for p in one.params[1:]] == [3]
    assert status_of(missing).code == StatusCode.FIELD_ERROR
    report = answer.param(237)
    assert report is not None
    assert ReportSpec.from_parameter(report) == DEFAULT_REPORT


@pytest.mark.parametrize(("requested", "expected"), [(1, 137), (2, 142), (3, 143), (4, 327)])
async def test_get_reader_capabilities_honours_requested_data(
    requested: int, expected: int
) -> None:
    async with reader() as (_, client):
        await client.send(T.GET_READER_CAPABILITIES, bytes((requested,)))
        one = await client.expect(T.GET_READER_CAPABILITIES_RESPONSE)
        await client.send(T.GET_READER_CAPABILITIES, b"\x00")
        every = await client.expect(T.GET_READER_CAPABILITIES_RESPONSE)
        await client.send(T.GET_READER_CAPABILITIES, b"\x09")
        undefined = await client.expect(T.GET_READER_CAPABILITIES_RESPONSE)
    assert kinds(one)[1:] == [expected]
    r420 = real_reader("GetReaderCapabilitiesResponse", T.GET_READER_CAPABILITIES_RESPONSE)
    assert kinds(every) == (kinds(r420) if r420 is not None else [287, 137, 142, 143, 327])
    assert status_of(undefined).code == StatusCode.FIELD_ERROR


async def test_set_reader_config_changes_what_get_reports() -> None:
    wanted = ReportSpec(1, 5, DEFAULT_REPORT.selector)
    async with reader() as (_, client):
        await client.send(T.GET_READER_CONFIG, struct.pack(">HBHH", 0, 7, 0, 0))
        before = await client.expect(T.GET_READER_CONFIG_RESPONSE)
        await client.send(T.SET_READER_CONFIG, b"\x00", wanted.to_parameter())
        assert status_of(await client.expect(T.SET_READER_CONFIG_RESPONSE)).ok
        await client.send(T.GET_READER_CONFIG, bytes(7))
        after = await client.expect(T.GET_READER_CONFIG_RESPONSE)
    report, state = after.param(237), after.param(217)
    assert report is not None
    assert state is not None
    assert ReportSpec.from_parameter(report) == wanted
    assert state != before.param(217)  # LLRPConfigurationStateValue follows the configuration


async def test_add_rospec_without_a_report_spec_uses_the_readers_default() -> None:
    async with reader() as (_, client):
        await client.send(T.ADD_ROSPEC, b"", rospec(duration_ms=400, with_report=False))
        assert status_of(await client.expect(T.ADD_ROSPEC_RESPONSE)).ok
        await client.send(T.ENABLE_ROSPEC, spec_id_fields(1))
        await client.expect(T.ENABLE_ROSPEC_RESPONSE)
        report = await client.expect(T.RO_ACCESS_REPORT)
    tags = tag_reports(report)  # the default: a report upon every tag (N = 1)
    (tag,) = tags
    assert None not in (tag.antenna_id, tag.peak_rssi, tag.first_seen_utc)
    assert tag.tag_seen_count is None  # the default selector does not ask for it


async def test_llrp_1_1_clients_negotiate_down_to_1_0_1() -> None:
    async with reader() as (_, client):
        client.writer.write(Message(T.GET_SUPPORTED_VERSION, 1, version=2).encode())
        answer = await client.expect(T.GET_SUPPORTED_VERSION_RESPONSE)
        client.writer.write(Message(T.GET_READER_CAPABILITIES, 2, b"\x00", version=2).encode())
        refused = await client.expect(T.ERROR_MESSAGE)
        client.writer.write(Message(T.SET_PROTOCOL_VERSION, 3, b"\x02", version=1).encode())
        too_new = await client.expect(T.SET_PROTOCOL_VERSION_RESPONSE)
        await client.send(T.SET_PROTOCOL_VERSION, b"\x01")
        agreed = await client.expect(T.SET_PROTOCOL_VERSION_RESPONSE)
        await client.send(T.GET_READER_CAPABILITIES, b"\x01")  # the connection goes on
        await client.expect(T.GET_READER_CAPABILITIES_RESPONSE)
    assert (answer.version, answer.fields, status_of(answer).ok) == (2, b"\x01\x01", True)
    assert (refused.id, status_of(refused).code) == (2, StatusCode.UNSUPPORTED_VERSION)
    assert status_of(too_new).code == StatusCode.UNSUPPORTED_VERSION
    assert status_of(agreed).ok


async def test_drop_resets_and_close_is_orderly() -> None:
    async with reader() as (sim, client):
        await sim.drop_connections()
        with pytest.raises(ConnectionResetError):
            await client.reader.read(65536)
    async with reader() as (sim, client):
        await sim.close_connections()
        event = ReaderEvent.from_message(await client.expect(T.READER_EVENT_NOTIFICATION))
        assert event.connection_close
        async with asyncio.timeout(5):
            assert await client.reader.read(65536) == b""  # FIN after the event
        assert sim.connected == 0
