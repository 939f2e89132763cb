"""Our LLRP source (real sllurp, configured as a site configures it) against an independent
reader: llrpkit's emulator (MIT, asyncio, its own codec and its own reading of LLRP).

A tap (``tests.support.llrp_tap``) relays the connection and decodes, with llrpkit's codec,
every tag report the emulator sent and every request the source sent, so what arrived can be
compared one for one with what was sent. The emulator stamps FirstSeenTimestampUTC with its
wall clock (``time.time()``), so reads must carry those times, not receipt times.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from llrpkit.client import LLRPClient
from llrpkit.emulator.core import EmulatedTag, LLRPEmulator

from edge.config import load_config
from edge.sources.llrp import LlrpReaderConfig
from protocols.llrp.messages import MessageType
from protocols.records import TagRead
from tests.support.llrp import Collected, collecting, load
from tests.support.llrp_tap import LlrpTap, SentRead
from tests.support.waiting import poll_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PALLET = load(9, cases=5)  # SSCC-96 and SGTIN-96: EPC-96 on the wire
LONG_EPC = "E28011606000020A1B2C3D4E5F601234"  # 128 bits: EPCData on the wire
POPULATION = [
    EmulatedTag(bytes.fromhex(epc), antennas=((1,), (2,))[i % 2], rssi_dbm=-48.0 - 2 * i)
    for i, epc in enumerate(PALLET)
] + [EmulatedTag(bytes.fromhex(LONG_EPC), antennas=(1, 2), rssi_dbm=-60.0)]
BEYOND = EmulatedTag(bytes.fromhex("30340242201D8840009EFDF0"), antennas=(3,), rssi_dbm=-50.0)
EXPECTED = {t.epc.hex().upper(): t for t in POPULATION}

SITE = """
gateway_id: gw-dock-test
cloud: {{cloud_url: "https://cloud.example/", token: secret-token}}
outbox: {{path: {tmp}/outbox.db}}
llrp:
  - reader_id: dock-1-reader
    host: 127.0.0.1
    port: {port}
    antennas: [1, 2]
doors:
  - {{door_id: dock-1, reader_id: dock-1-reader, outside_antennas: [1], inside_antennas: [2]}}
"""


def site_reader(tmp_path: Path, port: int) -> LlrpReaderConfig:
    """The reader as the agent reads it from a site's config file (defaults for the rest)."""
    path = tmp_path / "edge.yaml"
    path.write_text(SITE.format(tmp=tmp_path, port=port))
    (reader,) = load_config(path).llrp
    return reader


def emulator() -> LLRPEmulator:
    return LLRPEmulator(tags=[*POPULATION, BEYOND], reads_per_sec=200.0, seed=9)


def wire_key(r: TagRead) -> tuple[str, int, int, int | None]:
    first_us = (r.first_seen - _EPOCH) // timedelta(microseconds=1)
    return (r.epc, r.antenna, first_us, None if r.rssi is None else round(r.rssi))


def sent_keys(reads: Iterable[SentRead]) -> Counter[tuple[str, int, int, int | None]]:
    return Counter((s.epc, s.antenna or 0, s.first_seen_us or 0, s.rssi) for s in reads)


def check_reads(reads: list[TagRead], since: datetime) -> None:
    for r in reads:
        tag = EXPECTED[r.epc]  # every EPC is one of the population, as hex
        assert r.reader_id == "dock-1-reader"
        assert r.antenna in tag.antennas
        assert r.rssi is not None
        assert abs(r.rssi - tag.rssi_dbm) <= 8  # the emulator adds N(0, 1.5) dB
        # The reader's own UTC time, not receipt time, and a plausible one.
        assert since <= r.first_seen <= r.last_seen <= r.received_at
        assert r.count >= 1


async def test_every_tag_arrives_with_epc_antenna_reader_time_and_rssi(tmp_path: Path) -> None:
    since = datetime.now(UTC)
    async with emulator() as emu, LlrpTap(emu.port) as tap:
        async with collecting(site_reader(tmp_path, tap.port)) as (source, got):
            await got.until(lambda: {r.epc for r in got.reads} >= set(EXPECTED), within=15)
            assert got.states() == ["online"]
            assert source.connections == 1
        # The polite stop reaches the emulator: our ROSpec is deleted, then CLOSE_CONNECTION,
        # which the emulator answers and closes.
        await poll_until(lambda: tap.open_connections == 0, seconds=15, step=0.05)
    assert MessageType.START_ROSPEC.name in {name for _, name in tap.requests}
    requests = [name for _, name in tap.requests]
    assert requests[-1] == MessageType.CLOSE_CONNECTION.name
    stop = requests[requests.index(MessageType.START_ROSPEC.name) :]
    assert stop.count(MessageType.DELETE_ROSPEC.name) == 2  # 0 (refused: "no ROSpec 0"), then 1
    assert {r.epc for r in got.reads} == set(EXPECTED)  # the tag on antenna 3 is not asked for
    check_reads(got.reads, since)
    # Nothing invented or doubled: every read is one the emulator sent.
    assert not Counter(map(wire_key, got.reads)) - sent_keys(tap.reads)
    assert got.dead == []
    assert got.error is None


async def test_emulator_restart_on_the_same_port_reconnects_without_loss_or_duplicates(
    tmp_path: Path,
) -> None:
    since = datetime.now(UTC)
    emu = emulator()
    await emu.start()
    tap = LlrpTap(emu.port)
    await tap.start()
    try:
        async with collecting(site_reader(tmp_path, tap.port)) as (source, got):
            await got.until(lambda: len({r.epc for r in got.reads}) >= 3, within=15)
            port, tap_port = emu.port, tap.port
            await _outage(emu, tap, got)
            assert (emu.port, tap.port) == (port, tap_port)  # the same ports again
            first = len(got.reads)
            await got.until(
                lambda: got.states()[-1] == "online" and len(got.reads) > first + 20, within=20
            )
            assert source.connections == 2
            # Stop the emulator for good before the source, so nothing is in flight: then all
            # that it sent, over both connections, must have arrived exactly once.
            await emu.stop()
            await poll_until(lambda: tap.open_connections == 0, seconds=10, step=0.05)
            await poll_until(lambda: len(got.reads) >= len(tap.reads), seconds=10, step=0.05)
            assert got.error is None
    finally:
        await tap.stop()
        await emu.stop()
    assert {s.connection for s in tap.reads} >= {1, tap.connections}
    assert Counter(map(wire_key, got.reads)) == sent_keys(tap.reads)
    check_reads(got.reads, since)
    states = [(s.state.value, s.detail) for s in got.statuses]
    assert states[0][0] == "online"
    assert states[1] == ("offline", "connection to the reader lost")
    assert any("cannot connect" in detail for _, detail in states[2:-2])  # during the outage
    assert states[-2][0] == "online"
    assert states[-1] == ("offline", "connection to the reader lost")  # the final stop
    assert got.dead == []


async def _outage(emu: LLRPEmulator, tap: LlrpTap, got: Collected) -> None:
    """The reader goes away (connection closed, then refused) for a while and comes back."""
    await emu.stop()
    await poll_until(lambda: tap.open_connections == 0, seconds=10, step=0.05)
    await tap.stop()
    await got.until(lambda: "cannot connect" in got.statuses[-1].detail, within=15)
    await emu.start()
    await tap.start()


async def test_a_reader_busy_with_another_client_is_a_status_and_retried(
    tmp_path: Path,
) -> None:
    async with emulator() as emu, LlrpTap(emu.port) as tap:
        other = LLRPClient("127.0.0.1", emu.port)
        await other.connect()
        try:
            async with collecting(site_reader(tmp_path, tap.port)) as (source, got):
                await got.until(lambda: got.statuses != [], within=10)
                await poll_until(lambda: tap.connections >= 2, seconds=15, step=0.05)
                assert got.states() == ["offline"]  # one status for every refused attempt
                assert got.statuses[0].detail == (
                    "another client is connected (a client-initiated connection already "
                    "exists) (ConnectionAttemptEvent status 2)"
                )
                assert got.reads == []
                await other.close()
                await got.until(lambda: {r.epc for r in got.reads} >= set(EXPECTED), within=20)
                assert got.states() == ["offline", "online"]
                assert source.connections == 1
                assert got.error is None
        finally:
            await other.close()
