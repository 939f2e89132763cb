"""How the simulated reader runs an ROSpec: inventory rounds, AISpec ends, report triggers.

Pure (no I/O, no clock): the reader calls :meth:`InventoryRun.step` once per inventory round
with the scene time of that round and sends whatever reports come back.

- Antennas are inventoried in turn, one per round (AISpec antenna 0 means every antenna).
- A read of the same tag on the same antenna within one report window is aggregated into one
  TagReportData: first/last seen, peak RSSI and TagSeenCount (saturating at 65535).
- An AISpec ends on its stop trigger: duration, or a TagObservationTrigger "upon N tags" (N unique
  tags seen, or its timeout). A null trigger never ends it.
- Reports go out when the ROReportSpec says so: every N TagReportData (N > 0), and at the end of
  each AISpec (trigger 1) or of the ROSpec (trigger 2).
- A duration ROSpecStopTrigger ends the ROSpec; its last report is returned with ``done``.

>>> from protocols.llrp.specs import AiSpec, ContentSelector, ReportSpec, RoSpec
>>> from simulators.scene import ParkedTags, dock_door
>>> scene = dock_door()
>>> scene.add(ParkedTags(("3000" + "00" * 10,), x=-1.0, y=0.5))
>>> spec = RoSpec(1, 0, 0, 1, 0, 0, (AiSpec((0,), 1, 100),),
...               ReportSpec(1, 0, ContentSelector(antenna_id=True, tag_seen_count=True)))
>>> run = InventoryRun(spec, scene, epoch_us=0)
>>> reports = [r for i in range(11) for r in run.step(i * 0.01).reports]
>>> [(r.epc[:4], r.antenna_id) for r in reports]
[('3000', 1)]
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from protocols.llrp.reports import TagReport
from protocols.llrp.specs import (
    AI_STOP_DURATION,
    AI_STOP_TAG_OBSERVATION,
    REPORT_N_OR_AISPEC_END,
    REPORT_N_OR_ROSPEC_END,
    REPORT_NONE,
    ContentSelector,
    RoSpec,
)
from simulators.scene import Scene

ROSPEC_STOP_DURATION = 1
MAX_COUNT = 0xFFFF


@dataclass(slots=True)
class _Entry:
    first: float
    last: float
    count: int
    peak: int


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of one inventory round."""

    reports: list[TagReport] = field(default_factory=list)
    reads: int = 0
    done: bool = False


class InventoryRun:
    """One active ROSpec over a scene. Times are scene seconds; ``epoch_us`` maps them to UTC.

    With ``boot_us`` (the UTC instant the reader booted) timestamps are Uptime, as a reader
    whose clock was never set reports them.
    """

    def __init__(
        self, spec: RoSpec, scene: Scene, epoch_us: int, boot_us: int | None = None
    ) -> None:
        self.spec = spec
        self.boot_us = boot_us
        self._scene = scene
        self._epoch_us = epoch_us
        self._pending: dict[tuple[str, int], _Entry] = {}
        self._ai_index = 0
        self._ai_started: float | None = None
        self._ai_epcs: set[str] = set()
        self._started: float | None = None
        self._round = 0
        self._selector = spec.report.selector if spec.report else ContentSelector(antenna_id=True)

    def _antennas(self) -> tuple[int, ...]:
        wanted = self.spec.ai_specs[self._ai_index].antennas
        if 0 in wanted:
            return self._scene.antenna_ids
        return tuple(a for a in wanted if a in self._scene.antenna_ids) or wanted

    def step(self, t: float) -> Step:
        """Run one inventory round at scene time ``t``."""
        if self._started is None:
            self._started = t
        if self._ai_started is None:
            self._ai_started = t
        antennas = self._antennas()
        antenna = antennas[self._round % len(antennas)]
        self._round += 1
        reads = self._scene.observe(t, antenna)
        for epc, rssi in reads:
            self._ai_epcs.add(epc)
            entry = self._pending.get((epc, antenna))
            if entry is None:
                self._pending[epc, antenna] = _Entry(t, t, 1, rssi)
            else:
                entry.last = t
                entry.count = min(MAX_COUNT, entry.count + 1)
                entry.peak = max(entry.peak, rssi)
        return self._after_round(t, len(reads))

    def _after_round(self, t: float, reads: int) -> Step:
        report = self.spec.report
        trigger = report.trigger if report else REPORT_NONE
        out: list[TagReport] = []
        if report and report.n > 0 and len(self._pending) >= report.n:
            out += self.flush()
        if self._ai_ended(t):
            if trigger == REPORT_N_OR_AISPEC_END:
                out += self.flush()
            self._ai_index = (self._ai_index + 1) % len(self.spec.ai_specs)
            self._ai_started = None
            self._ai_epcs = set()
        spec = self.spec
        assert self._started is not None
        done = spec.stop_trigger == ROSPEC_STOP_DURATION and (
            (t - self._started) * 1000 >= spec.stop_duration_ms
        )
        if done and trigger in (REPORT_N_OR_AISPEC_END, REPORT_N_OR_ROSPEC_END):
            out += self.flush()
        return Step(out, reads, done)

    def _ai_ended(self, t: float) -> bool:
        ai = self.spec.ai_specs[self._ai_index]
        assert self._ai_started is not None
        elapsed_ms = (t - self._ai_started) * 1000
        if ai.stop_type == AI_STOP_DURATION:
            return elapsed_ms >= ai.duration_ms
        if ai.stop_type == AI_STOP_TAG_OBSERVATION:
            enough = ai.tag_count > 0 and len(self._ai_epcs) >= ai.tag_count
            return enough or (ai.timeout_ms > 0 and elapsed_ms >= ai.timeout_ms)
        return False

    def flush(self) -> list[TagReport]:
        """Everything aggregated since the last report, as TagReportData; empties the window."""
        pending, self._pending = self._pending, {}
        return [self._report(epc, antenna, e) for (epc, antenna), e in pending.items()]

    def _report(self, epc: str, antenna: int, e: _Entry) -> TagReport:
        sel = self._selector

        def utc(t: float) -> int:
            return self._epoch_us + round(t * 1_000_000)

        first = utc(e.first) if sel.first_seen else None
        last = utc(e.last) if sel.last_seen else None
        report = TagReport(
            epc=epc,
            rospec_id=self.spec.rospec_id if sel.rospec_id else None,
            spec_index=self._ai_index + 1 if sel.spec_index else None,
            inventory_parameter_spec_id=1 if sel.inventory_parameter_spec_id else None,
            antenna_id=antenna if sel.antenna_id else None,
            peak_rssi=e.peak if sel.peak_rssi else None,
            channel_index=1 if sel.channel_index else None,
            first_seen_utc=first,
            last_seen_utc=last,
            tag_seen_count=e.count if sel.tag_seen_count else None,
        )
        return report if self.boot_us is None else as_uptime(report, self.boot_us)


def as_uptime(report: TagReport, boot_us: int) -> TagReport:
    """``report`` with its UTC timestamps told as Uptime since ``boot_us`` (UTC)."""

    def since_boot(us: int | None) -> int | None:
        return None if us is None else us - boot_us

    return replace(
        report,
        first_seen_utc=None,
        last_seen_utc=None,
        first_seen_uptime=since_boot(report.first_seen_utc),
        last_seen_uptime=since_boot(report.last_seen_utc),
    )


def as_utc(report: TagReport, boot_us: int) -> TagReport:
    """The inverse of :func:`as_uptime`: what a reader with a set clock would have sent."""

    def utc(us: int | None) -> int | None:
        return None if us is None else us + boot_us

    return replace(
        report,
        first_seen_utc=utc(report.first_seen_uptime),
        last_seen_utc=utc(report.last_seen_uptime),
        first_seen_uptime=None,
        last_seen_uptime=None,
    )
