"""The reader simulator's LLRP conversation, driven by a raw client built on our own codec."""

from __future__ import annotations

import asyncio
import struct

import pytest

from protocols.llrp.frame import encode_frame
from protocols.llrp.messages import spec_id_fields
from protocols.llrp.params import tlv
from protocols.llrp.reports import ReaderEvent, StatusCode, status_of, tag_reports
from protocols.llrp.specs import (
    ROSPEC,
    KeepaliveSpec,
)
from simulators.llrp_reader import MalformedKind
from simulators.scene import ParkedTags
from tests.support.llrp import load
from tests.support.llrp_client import TAGS, RawClient, T, reader, rospec

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


async def test_capabilities_and_config() -> None:
    async with reader() as (_, client):
        await client.send(T.GET_READER_CAPABILITIES, b"\x00")
        caps = await client.expect(T.GET_READER_CAPABILITIES_RESPONSE)
        assert status_of(caps).ok
        general = caps.param(137)
        assert general is not None
        assert struct.unpack_from(">H", general.value)[0] == 4
        ka = KeepaliveSpec(1, 50)
        await client.send(T.SET_READER_CONFIG, b"\x00", ka.to_parameter())
        assert status_of(await client.expect(T.SET_READER_CONFIG_RESPONSE)).ok
        await client.send(T.GET_READER_CONFIG, bytes(7))
        config = await client.expect(T.GET_READER_CONFIG_RESPONSE)
        got = config.param(220)
        assert got is not None
        assert KeepaliveSpec.from_parameter(got) == ka
        await client.expect(T.KEEPALIVE, skip=())
        await client.send(T.KEEPALIVE_ACK)
        await client.send(T.ENABLE_EVENTS_AND_REPORTS)
        await client.send(T.GET_ACCESSSPECS)  # ENABLE_EVENTS_AND_REPORTS got no reply before it
        assert status_of(await client.expect(T.GET_ACCESSSPECS_RESPONSE)).ok


async def test_immediate_start_trigger_inventories_without_start_rospec() -> None:
    async with reader() as (_, client):
        await client.send(T.ADD_ROSPEC, b"", rospec())
        assert status_of(await client.expect(T.ADD_ROSPEC_RESPONSE)).ok
        await client.send(T.ENABLE_ROSPEC, spec_id_fields(1))
        assert status_of(await client.expect(T.ENABLE_ROSPEC_RESPONSE)).ok
        reports = tag_reports(await client.expect(T.RO_ACCESS_REPORT))
        assert reports
        for r in reports:
            assert r.epc in TAGS
            assert r.antenna_id in (1, 2)
            assert r.peak_rssi is not None
            assert r.first_seen_utc is not None
            assert r.tag_seen_count is not None
            assert r.last_seen_utc is None  # not asked for
        await client.send(T.GET_ROSPECS)
        listed = await client.expect(T.GET_ROSPECS_RESPONSE, skip=(T.RO_ACCESS_REPORT,))
        assert [p.type for p in listed.params] == [287, ROSPEC]


async def test_null_start_trigger_waits_for_start_rospec_and_stops() -> None:
    async with reader() as (_, client):
        await client.send(T.ADD_ROSPEC, b"", rospec(start=0))
        await client.expect(T.ADD_ROSPEC_RESPONSE)
        await client.send(T.START_ROSPEC, spec_id_fields(1))
        assert (
            status_of(await client.expect(T.START_ROSPEC_RESPONSE)).code == StatusCode.FIELD_ERROR
        )
        await client.send(T.ENABLE_ROSPEC, spec_id_fields(1))
        await client.expect(T.ENABLE_ROSPEC_RESPONSE)
        await asyncio.sleep(0.2)
        assert not any(m.type == T.RO_ACCESS_REPORT for m in client.inbox)
        await client.send(T.START_ROSPEC, spec_id_fields(1))
        await client.expect(T.START_ROSPEC_RESPONSE)
        await client.expect(T.RO_ACCESS_REPORT)
        await client.send(T.STOP_ROSPEC, spec_id_fields(1))
        await client.expect(T.STOP_ROSPEC_RESPONSE, skip=(T.RO_ACCESS_REPORT, T.KEEPALIVE))


async def test_delete_rospec_zero_deletes_all_and_unknown_ids_fail() -> None:
    async with reader() as (_, client):
        for i in (1, 2):
            await client.send(T.ADD_ROSPEC, b"", rospec(rospec_id=i, start=0))
            assert status_of(await client.expect(T.ADD_ROSPEC_RESPONSE)).ok
        await client.send(T.ADD_ROSPEC, b"", rospec(rospec_id=1))
        assert not status_of(await client.expect(T.ADD_ROSPEC_RESPONSE)).ok  # id in use
        await client.send(T.DELETE_ROSPEC, spec_id_fields(0))
        assert status_of(await client.expect(T.DELETE_ROSPEC_RESPONSE)).ok
        await client.send(T.DELETE_ROSPEC, spec_id_fields(2))
        status = status_of(await client.expect(T.DELETE_ROSPEC_RESPONSE))
        assert status.code == StatusCode.FIELD_ERROR
        await client.send(T.DELETE_ACCESSSPEC, spec_id_fields(0))
        assert status_of(await client.expect(T.DELETE_ACCESSSPEC_RESPONSE)).ok
        await client.send(T.ENABLE_ACCESSSPEC, spec_id_fields(5))
        assert not status_of(await client.expect(T.ENABLE_ACCESSSPEC_RESPONSE)).ok


async def test_bad_requests_get_error_messages_and_the_connection_stays() -> None:
    async with reader() as (_, client):
        await client.send(T.CUSTOM_MESSAGE, b"\x00\x00\x65\x1a\x15")
        error = await client.expect(T.ERROR_MESSAGE)
        assert status_of(error).code == StatusCode.UNSUPPORTED_MESSAGE
        client.writer.write(encode_frame(T.ADD_ROSPEC, 7, bytes.fromhex("00b100ff")))
        error = await client.expect(T.ERROR_MESSAGE)
        assert (error.id, status_of(error).code) == (7, StatusCode.PARAMETER_ERROR)
        await client.send(T.ADD_ROSPEC, b"", tlv(ROSPEC, struct.pack(">IBB", 3, 0, 0)))
        assert (
            status_of(await client.expect(T.ADD_ROSPEC_RESPONSE)).code == StatusCode.PARAMETER_ERROR
        )
        await client.send(T.CLOSE_CONNECTION)
        assert status_of(await client.expect(T.CLOSE_CONNECTION_RESPONSE)).ok
        with pytest.raises(ConnectionError):
            await client.recv()


async def test_a_second_client_is_refused_while_one_is_connected() -> None:
    async with reader() as (sim, _):
        r, w = await asyncio.open_connection("127.0.0.1", sim.port)
        second = RawClient(r, w)
        event = ReaderEvent.from_message(await second.expect(T.READER_EVENT_NOTIFICATION))
        assert event.connection_attempt == 2
        with pytest.raises(ConnectionError):
            await second.recv()
        w.close()
        await w.wait_closed()
        assert sim.connected == 1


async def test_faults_silence_malformed_frames_and_drops() -> None:
    async with reader() as (sim, client):
        await client.send(T.SET_READER_CONFIG, b"\x00", KeepaliveSpec(1, 30).to_parameter())
        await client.expect(T.SET_READER_CONFIG_RESPONSE)
        await client.expect(T.KEEPALIVE)
        sim.go_silent()
        await asyncio.sleep(0.05)
        client.inbox.clear()
        await client.send(T.GET_ROSPECS)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await client.recv()
        sim.resume()
        await client.expect(T.KEEPALIVE)
        assert await sim.send_malformed(MalformedKind.BODY) == 1
        raw = await client.reader.read(65536)
        assert encode_frame(T.RO_ACCESS_REPORT, 0, b"")[:2] in raw  # version 1, type 61
        await sim.drop_connections()
        assert sim.connected == 0
        with pytest.raises(ConnectionResetError):  # a TCP RST, not an orderly close
            await client.reader.read(65536)


async def test_unpaced_inventory_exceeds_a_thousand_reads_per_second() -> None:
    async with reader(paced=False, round_time=0.005) as (sim, client):
        sim.scene.add(ParkedTags(load(8, cases=48), x=0.0, y=0.3))  # a full pallet at the door
        await client.send(T.ADD_ROSPEC, b"", rospec(duration_ms=50))
        await client.expect(T.ADD_ROSPEC_RESPONSE)
        await client.send(T.ENABLE_ROSPEC, spec_id_fields(1))
        await client.expect(T.ENABLE_ROSPEC_RESPONSE)
        loop = asyncio.get_running_loop()
        start, reads = loop.time(), 0
        while loop.time() - start < 0.5:
            message = await client.expect(T.RO_ACCESS_REPORT)
            reads += sum(r.tag_seen_count or 0 for r in tag_reports(message))
        rate = reads / (loop.time() - start)
        assert rate > 1000, rate
        assert sim.now() > 0.5  # the scene ran faster than the wall clock
