"""Dock-door portal: scenes from the physical model (pallets in and out, strays) and edge cases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from edge.portal import DoorConfig, Portal, Portals, passage_id
from protocols.records import Direction, PortalPassage, TagRead
from simulators.scene import PalletPass, ParkedTags, dock_door
from tests.support.llrp import EPOCH, load, offline_reads

DOOR = DoorConfig(
    door_id="dock-1", reader_id="dock-reader-1", outside_antennas=(1,), inside_antennas=(2,)
)


def run_portal(reads: list[TagRead], door: DoorConfig = DOOR) -> list[PortalPassage]:
    portal = Portal(door)
    out: list[PortalPassage] = []
    for r in sorted(reads, key=lambda r: r.last_seen):
        out += portal.feed(r)
    out += portal.advance(reads[-1].last_seen + timedelta(minutes=5))
    return out


def read(epc: str, antenna: int, s: float, rssi: float = -50.0, count: int = 2) -> TagRead:
    t = EPOCH + timedelta(seconds=s)
    return TagRead(
        reader_id="dock-reader-1",
        antenna=antenna,
        epc=epc,
        rssi=rssi,
        first_seen=t,
        last_seen=t,
        count=count,
        received_at=t,
    )


@pytest.mark.parametrize(
    ("direction", "expected"), [("in", Direction.INBOUND), ("out", Direction.OUTBOUND)]
)
def test_one_pallet_makes_one_passage_with_its_direction(
    direction: str, expected: Direction
) -> None:
    scene = dock_door(seed=11)
    tags = load(1, cases=24)
    scene.add(PalletPass(tags, start=1.0, direction=direction))  # type: ignore[arg-type]
    passages = run_portal(offline_reads(scene, until=scene.end + 1))
    assert len(passages) == 1
    assert passages[0].direction is expected
    assert set(passages[0].epcs) == set(tags)
    assert passages[0].started_at >= EPOCH + timedelta(seconds=1)


def test_parked_weak_tags_never_make_passages() -> None:
    scene = dock_door(seed=5)
    strays = load(9, cases=30)
    scene.add(ParkedTags(strays))
    reads = offline_reads(scene, until=120)
    assert len(reads) > 100  # the reader does see them, weakly
    assert max(r.rssi or 0 for r in reads) < DOOR.rssi_threshold + 8
    assert run_portal(reads) == []


def test_a_pallet_left_standing_in_the_lane_is_parked_not_a_passage() -> None:
    scene = dock_door(seed=6)
    standing = load(7, cases=10)
    scene.add(ParkedTags(standing, x=-1.5, y=0.0))  # right in front of the outside antenna
    moving = load(1, cases=10)
    scene.add(PalletPass(moving, start=70.0, direction="in"))
    passages = run_portal(offline_reads(scene, until=90))
    assert [set(p.epcs) for p in passages] == [set(moving)]
    assert passages[0].direction is Direction.INBOUND


def test_two_pallets_back_to_back_make_two_passages() -> None:
    scene = dock_door(seed=12)
    first, second = load(1), load(2)
    scene.add(PalletPass(first, start=0.0, direction="in"))
    scene.add(PalletPass(second, start=12.0, direction="out"))
    passages = run_portal(offline_reads(scene, until=25))
    assert [(set(p.epcs), p.direction) for p in passages] == [
        (set(first), Direction.INBOUND),
        (set(second), Direction.OUTBOUND),
    ]
    assert passages[0].ended_at < passages[1].started_at


def test_passages_ids_are_deterministic_on_replay() -> None:
    scene_a, scene_b = dock_door(seed=3), dock_door(seed=3)
    for s in (scene_a, scene_b):
        s.add(PalletPass(load(4), start=0.5, direction="in"))
    a = run_portal(offline_reads(scene_a, until=12))
    b = run_portal(offline_reads(scene_b, until=12))
    assert [p.passage_id for p in a] == [p.passage_id for p in b]
    assert a[0].passage_id == passage_id("dock-1", a[0].started_at, a[0].epcs)


def test_direction_comes_from_the_side_that_saw_the_load_first() -> None:
    epcs = [f"3000{i:020X}" for i in range(4)]
    inbound = [read(e, 1, 0.1 * i) for i, e in enumerate(epcs)] + [
        read(e, 2, 2 + 0.1 * i) for i, e in enumerate(epcs)
    ]
    assert run_portal(inbound)[0].direction is Direction.INBOUND
    outbound = [read(e, 2, 0.1 * i) for i, e in enumerate(epcs)] + [
        read(e, 1, 2 + 0.1 * i) for i, e in enumerate(epcs)
    ]
    assert run_portal(outbound)[0].direction is Direction.OUTBOUND
    one_side = [read(e, 1, 0.1 * i, count=5) for i, e in enumerate(epcs)]
    assert run_portal(one_side)[0].direction is Direction.UNKNOWN


def test_weak_and_sparse_reads_are_left_out() -> None:
    good, weak, sparse = "3000" + "11" * 10, "3000" + "22" * 10, "3000" + "33" * 10
    reads = [read(good, 1, 0), read(good, 2, 1)]
    reads += [read(weak, 1, 0.5, rssi=-75), read(weak, 2, 0.6, rssi=-75, count=50)]
    reads += [read(sparse, 2, 0.7, count=1)]
    passages = run_portal(reads)
    assert [p.epcs for p in passages] == [(good,)]


def test_lingering_tag_is_debounced() -> None:
    epc = "3000" + "44" * 10
    reads = [read(epc, 1, 0), read(epc, 2, 1)]
    reads += [read(epc, 2, 5 + 4 * i) for i in range(5)]  # lingers at the inside edge
    portal = Portal(DOOR)
    passages = [p for r in reads for p in portal.feed(r)]
    passages += portal.advance(EPOCH + timedelta(minutes=5))
    assert len(passages) == 1


def test_passage_closes_only_after_the_quiet_gap() -> None:
    portal = Portal(DOOR)
    epc = "3000" + "55" * 10
    assert portal.feed(read(epc, 1, 0)) == []
    assert portal.feed(read(epc, 2, 1)) == []
    assert portal.advance(EPOCH + timedelta(seconds=3.5)) == []
    assert len(portal.advance(EPOCH + timedelta(seconds=4.5))) == 1
    assert portal.flush() == []


def test_other_readers_and_antennas_are_ignored() -> None:
    portal = Portal(DOOR)
    other = read("3000" + "66" * 10, 3, 0)
    assert not portal.accepts(other)
    assert portal.feed(other) == []
    assert portal.flush() == []


def test_portals_route_reads_to_their_doors() -> None:
    door2 = DoorConfig(
        door_id="dock-2", reader_id="dock-reader-1", outside_antennas=(3,), inside_antennas=(4,)
    )
    portals = Portals([DOOR, door2])
    a, b = "3000" + "77" * 10, "3000" + "88" * 10
    out = portals.feed([read(a, 1, 0), read(a, 2, 1), read(b, 4, 0), read(b, 3, 1)])
    assert out == []
    closed = portals.advance(EPOCH + timedelta(seconds=30))
    assert {(p.door_id, p.epcs, p.direction) for p in closed} == {
        ("dock-1", (a,), Direction.INBOUND),
        ("dock-2", (b,), Direction.OUTBOUND),
    }
    with pytest.raises(ValueError, match="unique"):
        Portals([DOOR, DOOR])


@pytest.mark.parametrize(
    "changes",
    [
        {"inside_antennas": (1,)},
        {"outside_antennas": ()},
        {"max_dwell": timedelta(seconds=1)},
        {"quiet_gap": timedelta(0)},
    ],
)
def test_door_config_is_refused_when_inconsistent(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DoorConfig.model_validate({**DOOR.model_dump(), **changes})
