"""A reader whose clock was never set reports Uptime: its reads get their true times back.

The simulator reports First/LastSeenTimestampUptime and events with Uptime; it holds reports
back (a network blip) and reboots (uptime from 0 again). The truth is what the same reader
with a set clock would have sent (``sim.sent_utc``). Real sllurp over TCP on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from edge.sources.llrp_link import tag_read
from edge.sources.llrp_uptime import ReaderUptime
from protocols.llrp.reports import TagReport
from protocols.records import Quality, TagRead
from simulators.llrp_reader import LlrpReaderSimulator, SimulatorConfig
from simulators.scene import ParkedTags, Scene, dock_door
from tests.support.llrp import Collected, collecting, fast_config, load

TAGS = load(3, cases=8)
HELD = timedelta(seconds=1.5)
BOUND = timedelta(milliseconds=50)
STEADY = {"keepalive_interval": timedelta(milliseconds=250), "missed_keepalives": 8}


def scene_in_front() -> Scene:
    scene = dock_door(seed=5)
    scene.add(ParkedTags(TAGS, x=0.0, y=0.3, spread=0.6))
    return scene


def _us(t: int | None) -> datetime:
    assert t is not None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=t)


def _check_connection(reads: list[TagRead], truths: list[TagReport]) -> None:
    """Each read against what a reader with a set clock sent: within the fastest transit
    (measured here) plus 50 ms, never before the truth, in the truth's order."""
    assert reads
    assert len(reads) == len(truths)
    fastest = min(r.received_at - _us(t.last_seen_utc) for r, t in zip(reads, truths, strict=True))
    for read, truth in zip(reads, truths, strict=True):
        assert (read.epc, read.antenna) == (truth.epc, truth.antenna_id)
        assert read.quality is Quality.UNCERTAIN
        for got, true in (
            (read.first_seen, truth.first_seen_utc),
            (read.last_seen, truth.last_seen_utc),
        ):
            error = got - _us(true)
            assert timedelta(milliseconds=-1) <= error <= BOUND + fastest, (error, fastest)
        assert read.last_seen <= read.received_at
    by_truth = sorted(zip(truths, reads, strict=True), key=lambda p: p[0].first_seen_utc or 0)
    for (t1, r1), (t2, r2) in pairwise(by_truth):
        if (t1.first_seen_utc or 0) < (t2.first_seen_utc or 0):
            assert r1.first_seen < r2.first_seen


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_uptime_reads_held_back_and_after_a_reboot_get_their_true_times() -> None:
    config = SimulatorConfig(
        port=0, speed=1.0, clock="uptime", uptime_at_start=timedelta(hours=7), record_sent=True
    )
    async with LlrpReaderSimulator(scene_in_front(), config) as sim:
        async with collecting(fast_config(sim.port, **STEADY)) as (source, got):
            await got.until(lambda: len(got.reads) >= 20)
            # A network blip: the reader buffers its reports, then sends them all at once.
            sim.hold_reports()
            await asyncio.sleep(HELD.total_seconds())
            held_from = len(sim.sent_utc)
            await sim.release_reports()
            held_to = len(sim.sent_utc)
            assert held_to > held_from
            # Everything sent has arrived before the reader reboots.
            sim.hold_reports()
            await _caught_up(got, sim)
            before_reboot = len(got.reads)
            await sim.reboot()
            await sim.release_reports()
            await got.until(lambda: len(got.reads) >= before_reboot + 20, within=10)
            sim.hold_reports()
            await _caught_up(got, sim)
            assert source.connections == 2
        reads, truths = list(got.reads), list(sim.sent_utc)
    assert len(reads) == len(truths)
    _check_connection(reads[:before_reboot], truths[:before_reboot])
    _check_connection(reads[before_reboot:], truths[before_reboot:])
    # The held reads arrived late: receipt time would have been wrong by about the hold.
    late = [r.received_at - _us(t.first_seen_utc) for r, t in zip(reads, truths, strict=True)]
    assert max(late[held_from:held_to]) > HELD * 0.8
    # The simulator really sent Uptime, and after the reboot it started again from 0.
    assert all(r.first_seen_utc is None and r.first_seen_uptime for r in sim.sent)
    assert (sim.sent[before_reboot].first_seen_uptime or 0) < 5_000_000


async def _caught_up(got: Collected, sim: LlrpReaderSimulator) -> None:
    await got.until(lambda: len(got.reads) >= len(sim.sent_utc), within=10)


T = datetime(2026, 3, 1, 8, tzinfo=UTC)


def test_utc_reads_are_used_as_sent_and_stay_good() -> None:
    report = TagReport(epc="3000ABCDEF00000000000003", first_seen_utc=1_772_352_000_000_000)
    read = tag_read("r1", report, T + timedelta(minutes=9), ReaderUptime())
    assert read.first_seen == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert read.quality is Quality.GOOD


def test_uptime_is_mapped_through_the_fastest_message() -> None:
    uptime = ReaderUptime()
    uptime.observe(10_000_000, T + timedelta(milliseconds=40))  # a slow event
    uptime.observe(11_000_000, T + timedelta(seconds=1, milliseconds=2))  # a fast one
    report = TagReport(epc="3000ABCDEF00000000000003", first_seen_uptime=12_000_000)
    read = tag_read("r1", report, T + timedelta(minutes=3), uptime)  # held for 3 minutes
    assert read.first_seen == T + timedelta(seconds=2, milliseconds=2)
    assert read.quality is Quality.UNCERTAIN


def test_an_uptime_read_is_never_placed_after_its_receipt() -> None:
    uptime = ReaderUptime()
    uptime.observe(1_000_000, T)
    # A report whose uptime runs ahead of the estimate tightens it on the spot.
    report = TagReport(
        epc="3000ABCDEF00000000000003", first_seen_uptime=5_000_000, last_seen_uptime=6_000_000
    )
    read = tag_read("r1", report, T + timedelta(seconds=2), uptime)
    assert read.last_seen == T + timedelta(seconds=2)
    assert read.first_seen == T + timedelta(seconds=1)


def test_without_any_timestamp_receipt_time_stands_in_and_is_uncertain() -> None:
    read = tag_read("r1", TagReport(epc="3000ABCDEF00000000000003"), T, ReaderUptime())
    assert (read.first_seen, read.last_seen, read.quality) == (T, T, Quality.UNCERTAIN)
