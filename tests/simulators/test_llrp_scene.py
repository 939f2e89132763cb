"""The dock-door scene model and the simulated reader's inventory logic (pure, no sockets)."""

from __future__ import annotations

from collections import defaultdict

import pytest

from protocols.gs1.epc import Sgtin, Sscc, decode_epc
from protocols.llrp.specs import (
    AI_STOP_DURATION,
    AI_STOP_NULL,
    AI_STOP_TAG_OBSERVATION,
    REPORT_N_OR_AISPEC_END,
    AiSpec,
    ContentSelector,
    ReportSpec,
    RoSpec,
)
from simulators.llrp_inventory import InventoryRun
from simulators.scene import PalletPass, ParkedTags, Scene, dock_door
from tests.support.llrp import load


def first_seen_by_antenna(scene: Scene, until: float) -> dict[int, float]:
    first: dict[int, float] = {}
    for i in range(int(until / 0.02)):
        for antenna in (1, 2):
            if scene.observe(i * 0.02, antenna) and antenna not in first:
                first[antenna] = i * 0.02
    return first


@pytest.mark.parametrize(("direction", "first", "second"), [("in", 1, 2), ("out", 2, 1)])
def test_a_pallet_reaches_one_antenna_before_the_other(
    direction: str, first: int, second: int
) -> None:
    scene = dock_door(seed=1)
    scene.add(PalletPass(load(1), start=0.0, direction=direction))  # type: ignore[arg-type]
    seen = first_seen_by_antenna(scene, scene.end)
    assert seen[first] + 1.0 < seen[second]


def test_pallet_tags_are_an_sscc_and_sgtins() -> None:
    tags = load(5, cases=3)
    kinds = [type(decode_epc(t)) for t in tags]
    assert kinds == [Sscc, Sgtin, Sgtin, Sgtin]


def test_rssi_is_realistic_and_strongest_near_the_antenna() -> None:
    scene = dock_door(seed=2)
    tags = load(2, cases=20)
    scene.add(PalletPass(tags, start=0.0, direction="in", speed=1.0))
    by_time: dict[int, list[int]] = defaultdict(list)
    for i in range(int(scene.end / 0.02)):
        for _, rssi in scene.observe(i * 0.02, 1):
            by_time[int(i * 0.02)].append(rssi)
    all_rssi = [r for values in by_time.values() for r in values]
    assert min(all_rssi) >= -82
    assert max(all_rssi) <= -30
    loudest_second = max(by_time, key=lambda s: max(by_time[s]))
    assert 4 <= loudest_second <= 6  # the pallet is in front of antenna 1 (x=-1) at t=5 s


def test_parked_tags_far_away_read_weakly_and_sparsely() -> None:
    scene = dock_door(seed=3)
    tags = load(3, cases=10)
    scene.add(ParkedTags(tags))
    reads = [r for i in range(500) for r in scene.observe(i * 0.02, 2)]
    assert reads
    assert len(reads) < 0.6 * 500 * len(tags)
    assert max(rssi for _, rssi in reads) < -63


def test_scene_is_deterministic_for_a_seed() -> None:
    def run(seed: int) -> list[tuple[str, int]]:
        scene = dock_door(seed=seed)
        scene.add(PalletPass(load(1), start=0.0, direction="in"))
        return [r for i in range(300) for r in scene.observe(i * 0.02, 1 + i % 2)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def spec(ai: AiSpec, n: int = 0) -> RoSpec:
    selector = ContentSelector(antenna_id=True, tag_seen_count=True, last_seen=True)
    return RoSpec(1, 0, 0, 1, 0, 0, (ai,), ReportSpec(REPORT_N_OR_AISPEC_END, n, selector))


def busy_scene() -> Scene:
    scene = dock_door(seed=9)
    scene.add(ParkedTags(load(1, cases=48), x=0.0, y=0.3))
    return scene


def test_a_full_pallet_in_front_gives_over_a_thousand_reads_per_second() -> None:
    run = InventoryRun(spec(AiSpec((0,), AI_STOP_DURATION, 100)), busy_scene(), epoch_us=0)
    reads = sum(run.step(i * 0.02).reads for i in range(100))  # two seconds of scene time
    assert reads / 2.0 > 1000


def test_reports_aggregate_reads_per_tag_and_antenna() -> None:
    run = InventoryRun(spec(AiSpec((1, 2), AI_STOP_DURATION, 200)), busy_scene(), epoch_us=0)
    steps = [run.step(i * 0.02) for i in range(11)]
    reports = [r for s in steps for r in s.reports]
    assert sum(s.reads for s in steps) == sum(r.tag_seen_count or 0 for r in reports)
    keys = [(r.epc, r.antenna_id) for r in reports]
    assert len(keys) == len(set(keys))
    assert all(r.last_seen_utc is not None and r.first_seen_utc is None for r in reports)


def test_upon_n_tags_ends_the_aispec_early() -> None:
    run = InventoryRun(
        spec(AiSpec((0,), AI_STOP_TAG_OBSERVATION, 0, tag_count=5, timeout_ms=500)),
        busy_scene(),
        epoch_us=0,
    )
    assert run.step(0.0).reports  # dozens of tags seen in the first round: report at once


def test_n_tag_report_trigger_and_null_aispec() -> None:
    run = InventoryRun(spec(AiSpec((0,), AI_STOP_NULL, 0), n=10), busy_scene(), epoch_us=0)
    first = run.step(0.0)
    assert len(first.reports) >= 10
    empty = InventoryRun(spec(AiSpec((0,), AI_STOP_NULL, 0)), dock_door(), epoch_us=0)
    assert all(not empty.step(i * 0.02).reports for i in range(50))  # nothing ever ends it


def test_rospec_duration_stop_ends_the_run() -> None:
    base = spec(AiSpec((0,), AI_STOP_DURATION, 1000))
    timed = RoSpec(1, 0, 0, 1, 1, 100, base.ai_specs, base.report)
    run = InventoryRun(timed, busy_scene(), epoch_us=0)
    steps = [run.step(i * 0.02) for i in range(6)]
    assert [s.done for s in steps] == [False] * 5 + [True]
    assert steps[-1].reports  # the final report goes out with the end
