"""The LLRP source (real sllurp) against the reader simulator over real TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from datetime import timedelta

import pytest
from pydantic import ValidationError

from edge.sources.base import PermanentSourceError
from edge.sources.llrp import LlrpReaderConfig, LlrpSource
from protocols.records import TagRead
from simulators.llrp_reader import LlrpReaderSimulator, MalformedKind, SimulatorConfig
from simulators.scene import ParkedTags, Scene, dock_door
from tests.support.llrp import EPOCH, Collected, collecting, fast_config, load
from tests.support.waiting import poll_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TAGS = load(1, cases=8)
# Tests that assert "no reconnect" give the watchdog room for a loaded CI machine.
STEADY = {"keepalive_interval": timedelta(milliseconds=250), "missed_keepalives": 8}


def scene_in_front() -> Scene:
    """Tags standing between the antennas: a steady stream of strong reads on both."""
    scene = dock_door(seed=2)
    scene.add(ParkedTags(TAGS, x=0.0, y=0.3, spread=0.6))
    return scene


def sim_config(**overrides: object) -> SimulatorConfig:
    values: dict[str, object] = {"port": 0, "speed": 2.0, "epoch": EPOCH}
    values.update(overrides)
    return SimulatorConfig.model_validate(values)


def sllurp_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("sllurp-reader")]


def key(r: TagRead) -> tuple[str, int, int]:
    return (r.epc, r.antenna, int(r.first_seen.timestamp() * 1_000_000))


async def test_handshake_then_tag_reports_arrive_as_tag_reads() -> None:
    async with LlrpReaderSimulator(scene_in_front(), sim_config()) as sim:
        async with collecting(fast_config(sim.port)) as (source, got):
            await _handshake_and_reports(sim, source, got)
        # The polite stop reaches the reader after the source has closed: wait for it, bounded
        # (15 s: the suite runs in parallel on two cores, and sllurp's thread must be scheduled).
        await poll_until(lambda: sim.requests["DELETE_ROSPEC"] >= 2, seconds=15, step=0.05)
        assert sim.requests["DELETE_ROSPEC"] == 2  # and our polite stop on shutdown
    assert sllurp_threads() == []


async def _handshake_and_reports(
    sim: LlrpReaderSimulator, source: LlrpSource, got: Collected
) -> None:
    await got.until(lambda: {r.epc for r in got.reads} >= set(TAGS))
    assert got.states()[0] == "online"
    assert source.name == "llrp:dock-reader-1"
    assert {r.antenna for r in got.reads} == {1, 2}
    for r in got.reads:
        assert r.reader_id == "dock-reader-1"
        assert r.rssi is not None
        assert -90 < r.rssi < -20
        assert EPOCH <= r.first_seen <= r.last_seen < EPOCH + timedelta(minutes=1)
        assert r.count >= 1
    # Every field the ROSpec asks for came back: aggregated counts and distinct timestamps.
    assert any(r.count > 1 for r in got.reads)
    assert any(r.first_seen < r.last_seen for r in got.reads)
    assert got.dead == []
    assert sim.requests["DELETE_ROSPEC"] == 1  # sllurp's reset on connect


async def test_reconnects_after_the_reader_drops_the_connection() -> None:
    async with (
        LlrpReaderSimulator(scene_in_front(), sim_config()) as sim,
        collecting(fast_config(sim.port)) as (source, got),
    ):
        await got.until(lambda: len(got.reads) > 10)
        await sim.drop_connections()
        await got.until(lambda: got.states()[-2:] == ["offline", "online"])
        assert "lost" in got.statuses[-2].detail
        before = len(got.reads)
        await got.until(lambda: len(got.reads) > before + 10)
        assert source.connections == 2
    assert sllurp_threads() == []


async def test_watchdog_tears_down_a_reader_that_goes_silent() -> None:
    async with (
        LlrpReaderSimulator(scene_in_front(), sim_config()) as sim,
        collecting(fast_config(sim.port)) as (source, got),
    ):
        await got.until(lambda: len(got.reads) > 10)
        sim.go_silent()
        await got.until(lambda: got.states()[-1] == "offline")
        assert "keepalive watchdog" in got.statuses[-1].detail
        sim.resume()
        await got.until(lambda: got.states()[-1] == "online")
        before = len(got.reads)
        await got.until(lambda: len(got.reads) > before + 10)
        assert source.connections >= 2


async def test_malformed_report_is_dead_lettered_and_nothing_else_is_lost() -> None:
    async with (
        LlrpReaderSimulator(scene_in_front(), sim_config(record_sent=True)) as sim,
        collecting(fast_config(sim.port, **STEADY)) as (source, got),
    ):
        await got.until(lambda: len(got.reads) > 10)
        assert await sim.send_malformed(MalformedKind.BODY) == 1
        await got.until(lambda: len(got.dead) == 1)
        after = len(got.reads)
        await got.until(lambda: len(got.reads) > after + 10)
        sim.go_silent()  # stop producing, then every report sent must have arrived
        await got.until(lambda: len(got.reads) >= len(sim.sent))
        assert Counter(map(key, got.reads)) == Counter(
            (r.epc, r.antenna_id, r.first_seen_utc) for r in sim.sent
        )
        assert got.dead[0].reason.startswith("undecodable RO_ACCESS_REPORT")
        assert got.dead[0].raw[:2] == b"\x04\x3d"  # the frame as received, header included
        assert source.connections == 1


async def test_malformed_header_forces_a_reconnect_and_reads_resume() -> None:
    async with (
        LlrpReaderSimulator(scene_in_front(), sim_config()) as sim,
        collecting(fast_config(sim.port)) as (source, got),
    ):
        await got.until(lambda: len(got.reads) > 10)
        await sim.send_malformed(MalformedKind.HEADER)
        await got.until(lambda: got.states()[-2:] == ["offline", "online"])
        assert "malformed LLRP header" in got.statuses[-2].detail
        assert any("stream broken" in d.reason for d in got.dead)
        before = len(got.reads)
        await got.until(lambda: len(got.reads) > before + 10)
        assert source.connections == 2


async def test_slow_consumer_gets_back_pressure_not_loss() -> None:
    async with LlrpReaderSimulator(scene_in_front(), sim_config(record_sent=True)) as sim:
        config = fast_config(sim.port, queue_size=1, report_every_n_tags=4, **STEADY)
        async with collecting(config, per_batch_delay=0.03) as (source, got):
            await got.until(lambda: len(got.reads) > 0)
            await asyncio.sleep(0.6)
            sim.go_silent()
            sent = len(sim.sent)
            assert sent > len(got.reads)  # the consumer is behind: reports are held back
            await got.until(lambda: len(got.reads) >= sent, within=20)
            assert Counter(map(key, got.reads)) == Counter(
                (r.epc, r.antenna_id, r.first_seen_utc) for r in sim.sent
            )
            assert source.connections == 1  # waiting for room is not silence


async def test_antennas_the_reader_lacks_are_a_permanent_error() -> None:
    async with (
        LlrpReaderSimulator(scene_in_front(), sim_config(antennas=2)) as sim,
        collecting(fast_config(sim.port, antennas=(1, 3))) as (_, got),
    ):
        await got.until(lambda: got.error is not None)
        assert isinstance(got.error, PermanentSourceError)
        assert got.states() == ["offline"]
        assert "antenna" in got.statuses[0].detail.lower()
    assert sllurp_threads() == []


async def test_unreachable_reader_is_retried_until_it_appears() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with collecting(fast_config(port)) as (source, got):
        await got.until(lambda: got.states() == ["offline"])
        assert "cannot connect" in got.statuses[0].detail
        await asyncio.sleep(0.3)  # several failed attempts, still one status record
        assert got.states() == ["offline"]
        async with LlrpReaderSimulator(scene_in_front(), sim_config(port=port)):
            await got.until(lambda: len(got.reads) > 0)
        assert got.states()[:2] == ["offline", "online"]
        assert source.connections == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"antennas": ()},
        {"antennas": (1, 1)},
        {"backoff_initial": timedelta(seconds=5), "backoff_max": timedelta(seconds=1)},
        {"keepalive_interval": timedelta(0)},
        {"port": 0},
    ],
)
def test_reader_config_is_refused_when_wrong(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        LlrpReaderConfig.model_validate({"reader_id": "r1", "host": "127.0.0.1", **changes})
