"""RFID throughput: simulator → sllurp → TagRead → dock-door portal, and CPU per 1,000 reads.

The reader simulator runs unpaced in a child process (so its CPU is not counted); this process
runs the LLRP source (sllurp's socket thread plus our framing and report decoding) and feeds the
records to a ``Portals``. Figures:

- tag reads per second (sum of TagSeenCount) and TagRead records per second;
- CPU seconds (process time: every thread of this process) per 1,000 tag reads;
- baselines measured in the same run on the same kind of reports, without sockets: our codec
  decoding RO_ACCESS_REPORTs into TagReads, and sllurp's own decoder on the same bytes (which
  the source no longer runs on reports).

Run: ``.venv/bin/python -m bench.llrp [--seconds 8]``. Never fails on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import time
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as MpEvent

from sllurp.llrp import LLRPMessage

from edge.portal import DoorConfig, Portals
from edge.sources.llrp import LlrpReaderConfig, LlrpSource
from edge.sources.llrp_link import records_from_report
from protocols.llrp.frame import Framer
from protocols.llrp.messages import decode_message
from protocols.llrp.reports import ro_access_report, tag_reports
from protocols.llrp.specs import (
    AI_STOP_TAG_OBSERVATION,
    REPORT_N_OR_AISPEC_END,
    AiSpec,
    ContentSelector,
    ReportSpec,
    RoSpec,
)
from protocols.records import TagRead
from simulators.llrp_inventory import InventoryRun
from simulators.llrp_reader import LlrpReaderSimulator, SimulatorConfig
from simulators.scene import Antenna, PalletPass, ParkedTags, Scene, pallet, sscc18

EPOCH = datetime(2026, 3, 1, tzinfo=UTC)
DOOR = DoorConfig(door_id="dock-1", reader_id="bench", outside_antennas=(1,), inside_antennas=(2,))


def busy_scene() -> Scene:
    """Two doors on one 4-port reader: pallets through door 1 (antennas 1, 2) every 12 scene
    seconds, and 48 cases standing in door 2 (antennas 3, 4) for a steady load of reads."""
    antennas = (
        Antenna(1, -1.0, 1.5),
        Antenna(2, 1.0, 1.5),
        Antenna(3, -1.0, 21.5),
        Antenna(4, 1.0, 21.5),
    )
    scene = Scene(antennas, seed=1)
    steady = pallet(sscc18("0614141", 1), "00614141000012", 48)
    scene.add(ParkedTags(steady, x=0.0, y=20.3))
    for n in range(2, 400):
        tags = pallet(sscc18("0614141", n), "00614141000029", 24, first_serial=n * 100)
        scene.add(PalletPass(tags, start=12.0 * n, direction="in" if n % 2 else "out"))
    return scene


def _simulator(port_out: mp.Queue[int], stop: MpEvent) -> None:
    async def serve() -> None:
        config = SimulatorConfig(port=0, paced=False, epoch=EPOCH)
        async with LlrpReaderSimulator(busy_scene(), config) as sim:
            port_out.put(sim.port)
            await asyncio.to_thread(stop.wait)

    asyncio.run(serve())


async def pipeline(port: int, seconds: float) -> dict[str, float]:
    config = LlrpReaderConfig(
        reader_id="bench",
        host="127.0.0.1",
        port=port,
        antennas=(1, 2, 3, 4),
        report_every_n_tags=100,
    )
    portals = Portals([DOOR])
    reads = records = passages = 0
    started = cpu0 = 0.0
    async with LlrpSource(config) as source:
        async for batch in source:
            if not started and any(isinstance(r, TagRead) for r in batch):
                started, cpu0 = time.perf_counter(), time.process_time()
            if started:
                tag_reads = [r for r in batch if isinstance(r, TagRead)]
                reads += sum(r.count for r in tag_reads)
                records += len(tag_reads)
                passages += len(portals.feed(tag_reads))
                if tag_reads:
                    passages += len(portals.advance(tag_reads[-1].last_seen))
                if time.perf_counter() - started >= seconds:
                    break
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    return {
        "reads": reads,
        "records": records,
        "passages": passages,
        "wall": wall,
        "cpu": cpu,
    }


def source_rospec() -> RoSpec:
    """The ROSpec the source asks for with the bench's settings (N=100 tags or 250 ms)."""
    selector = ContentSelector(
        antenna_id=True, peak_rssi=True, first_seen=True, last_seen=True, tag_seen_count=True
    )
    ai = AiSpec((1, 2, 3, 4), AI_STOP_TAG_OBSERVATION, 0, tag_count=100, timeout_ms=250)
    return RoSpec(1, 0, 0, 1, 0, 0, (ai,), ReportSpec(REPORT_N_OR_AISPEC_END, 0, selector))


def sample_reports(n_messages: int) -> tuple[list[bytes], int]:
    """RO_ACCESS_REPORTs as the simulator sends them, and the tag reads they hold."""
    run = InventoryRun(source_rospec(), busy_scene(), int(EPOCH.timestamp() * 1e6))
    frames: list[bytes] = []
    reads = 0
    t = 0.0
    while len(frames) < n_messages:
        step = run.step(t)
        t += 0.02
        if step.reports:
            frames.append(ro_access_report(len(frames) + 1, step.reports).encode())
            reads += sum(r.tag_seen_count or 0 for r in step.reports)
    return frames, reads


def baselines(n_messages: int) -> dict[str, float]:
    frames, reads = sample_reports(n_messages)
    now = datetime.now(UTC)
    cpu0 = time.process_time()
    framer = Framer()
    decoded = 0
    for raw in frames:
        for frame in framer.feed(raw):
            decoded += len(tag_reports(decode_message(frame)))
    codec_cpu = time.process_time() - cpu0
    cpu0 = time.process_time()
    framer = Framer()
    ours = 0
    for raw in frames:
        for frame in framer.feed(raw):
            ours += len(records_from_report("bench", frame, now, "llrp:bench"))
    ours_cpu = time.process_time() - cpu0
    cpu0 = time.process_time()
    for raw in frames:
        LLRPMessage(msgbytes=raw)
    sllurp_cpu = time.process_time() - cpu0
    return {
        "reads": reads,
        "records": ours,
        "codec": codec_cpu,
        "ours": ours_cpu,
        "sllurp": sllurp_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--messages", type=int, default=400)
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    port_q: mp.Queue[int] = ctx.Queue()
    stop = ctx.Event()
    child = ctx.Process(target=_simulator, args=(port_q, stop))
    child.start()
    try:
        port = port_q.get(timeout=30)
        result = asyncio.run(pipeline(port, args.seconds))
    finally:
        stop.set()
        child.join(10)
        if child.is_alive():
            child.terminate()
            child.join()
    base = baselines(args.messages)

    per_k = 1000 / max(result["records"], 1)
    print("LLRP pipeline: simulator (child process) → sllurp → TagRead → portal")
    print(
        f"  {result['reads'] / result['wall']:,.0f} tag reads/s as "
        f"{result['records'] / result['wall']:,.0f} TagRead records/s "
        f"({result['reads'] / max(result['records'], 1):.1f} reads per record), "
        f"{result['passages']:.0f} passages, over {result['wall']:.1f} s"
    )
    print(f"  CPU {result['cpu'] * per_k * 1000:.1f} ms per 1,000 TagRead records (this process)")
    bk = 1000 / max(base["records"], 1)
    print(
        f"Baseline, same run, no sockets: {args.messages} reports, {base['records']:,.0f} "
        f"TagReportData, {base['reads']:,.0f} tag reads; CPU per 1,000 TagReportData:"
    )
    print(f"  our codec, decode only:      {base['codec'] * bk * 1000:.1f} ms")
    print(f"  our codec → TagRead records: {base['ours'] * bk * 1000:.1f} ms")
    print(f"  sllurp's decoder (dicts):    {base['sllurp'] * bk * 1000:.1f} ms")
    overhead = (result["cpu"] * per_k - base["ours"] * bk) * 1000
    print(
        f"  pipeline minus codec → TagRead (sockets, sllurp, hand-off, portal): {overhead:.1f} ms"
    )


if __name__ == "__main__":
    main()
