"""Typed views of what a client configures: ROSpec, report spec, content selector, keepalive.

A reader (our simulator) reads these from ADD_ROSPEC and SET_READER_CONFIG; a client builds them.

>>> sel = ContentSelector(antenna_id=True, peak_rssi=True, first_seen=True)
>>> sel.to_parameter().encode().hex()
'00ee00061600'
>>> ContentSelector.from_parameter(sel.to_parameter()) == sel
True
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields

from protocols.llrp.errors import DecodeError
from protocols.llrp.params import Parameter, tlv

ROSPEC = 177
RO_BOUNDARY_SPEC = 178
ROSPEC_START_TRIGGER = 179
ROSPEC_STOP_TRIGGER = 182
AI_SPEC = 183
AI_SPEC_STOP_TRIGGER = 184
TAG_OBSERVATION_TRIGGER = 185
KEEPALIVE_SPEC = 220
RO_REPORT_SPEC = 237
TAG_REPORT_CONTENT_SELECTOR = 238
C1G2_EPC_MEMORY_SELECTOR = 348

START_IMMEDIATE = 1
"""ROSpecStartTriggerType: 0 null (START_ROSPEC needed), 1 immediate, 2 periodic, 3 GPI."""
AI_STOP_NULL, AI_STOP_DURATION, AI_STOP_GPI, AI_STOP_TAG_OBSERVATION = 0, 1, 2, 3
REPORT_NONE, REPORT_N_OR_AISPEC_END, REPORT_N_OR_ROSPEC_END = 0, 1, 2


def _need(p: Parameter | None, what: str) -> Parameter:
    if p is None:
        raise DecodeError(f"missing {what}")
    return p


@dataclass(frozen=True, slots=True)
class ContentSelector:
    """TagReportContentSelector: which fields each TagReportData carries."""

    rospec_id: bool = False
    spec_index: bool = False
    inventory_parameter_spec_id: bool = False
    antenna_id: bool = False
    channel_index: bool = False
    peak_rssi: bool = False
    first_seen: bool = False
    last_seen: bool = False
    tag_seen_count: bool = False
    access_spec_id: bool = False

    @classmethod
    def from_parameter(cls, p: Parameter) -> ContentSelector:
        if p.type != TAG_REPORT_CONTENT_SELECTOR or len(p.value) != 2:
            raise DecodeError("malformed TagReportContentSelector")
        word = struct.unpack(">H", p.value)[0]
        flags = [bool(word & (0x8000 >> i)) for i in range(10)]
        return cls(*flags)

    def to_parameter(self) -> Parameter:
        word = 0
        for i, f in enumerate(fields(self)):
            if getattr(self, f.name):
                word |= 0x8000 >> i
        return tlv(TAG_REPORT_CONTENT_SELECTOR, struct.pack(">H", word))


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """ROReportSpec: when to report (trigger, N tags) and what each report holds."""

    trigger: int = REPORT_N_OR_AISPEC_END
    n: int = 0
    selector: ContentSelector = ContentSelector()

    @classmethod
    def from_parameter(cls, p: Parameter) -> ReportSpec:
        if p.type != RO_REPORT_SPEC or len(p.value) != 3:
            raise DecodeError("malformed ROReportSpec")
        trigger, n = struct.unpack(">BH", p.value)
        sel = p.child(TAG_REPORT_CONTENT_SELECTOR)
        return cls(trigger, n, ContentSelector.from_parameter(_need(sel, "content selector")))

    def to_parameter(self) -> Parameter:
        """ROReportSpec with its TagReportContentSelector.

        >>> ReportSpec.from_parameter(ReportSpec(2, 1).to_parameter()) == ReportSpec(2, 1)
        True
        """
        fixed = struct.pack(">BH", self.trigger, self.n)
        return tlv(RO_REPORT_SPEC, fixed, self.selector.to_parameter())


@dataclass(frozen=True, slots=True)
class AiSpec:
    """One antenna inventory spec: antennas (0 = all) and when the AISpec ends.

    ``tag_count`` and ``timeout_ms`` come from a TagObservationTrigger ("upon N tags").
    """

    antennas: tuple[int, ...]
    stop_type: int = AI_STOP_NULL
    duration_ms: int = 0
    tag_count: int = 0
    timeout_ms: int = 0

    @classmethod
    def from_parameter(cls, p: Parameter) -> AiSpec:
        (count,) = struct.unpack_from(">H", p.value)
        antennas = struct.unpack_from(f">{count}H", p.value, 2)
        stop = _need(p.child(AI_SPEC_STOP_TRIGGER), "AISpecStopTrigger")
        stop_type, duration = struct.unpack(">BI", stop.value)
        obs = stop.child(TAG_OBSERVATION_TRIGGER)
        tag_count = timeout = 0
        if obs is not None:
            _trig, _r, tag_count, _attempts, _t, timeout = struct.unpack(">BBHHHI", obs.value)
        return cls(tuple(antennas), stop_type, duration, tag_count, timeout)


@dataclass(frozen=True, slots=True)
class RoSpec:
    """The parts of an ROSpec a reader needs to run it."""

    rospec_id: int
    priority: int
    current_state: int
    start_trigger: int
    stop_trigger: int
    stop_duration_ms: int
    ai_specs: tuple[AiSpec, ...]
    report: ReportSpec | None

    @classmethod
    def from_parameter(cls, p: Parameter) -> RoSpec:
        if p.type != ROSPEC:
            raise DecodeError(f"expected ROSpec (177), got parameter {p.type}")
        rospec_id, priority, state = struct.unpack(">IBB", p.value)
        boundary = _need(p.child(RO_BOUNDARY_SPEC), "ROBoundarySpec")
        start = _need(boundary.child(ROSPEC_START_TRIGGER), "ROSpecStartTrigger")
        stop = _need(boundary.child(ROSPEC_STOP_TRIGGER), "ROSpecStopTrigger")
        stop_type, stop_duration = struct.unpack(">BI", stop.value)
        ai = tuple(AiSpec.from_parameter(a) for a in p.all(AI_SPEC))
        if not ai:
            raise DecodeError("ROSpec without AISpec")
        rep = p.child(RO_REPORT_SPEC)
        return cls(
            rospec_id,
            priority,
            state,
            start.value[0],
            stop_type,
            stop_duration,
            ai,
            ReportSpec.from_parameter(rep) if rep else None,
        )


@dataclass(frozen=True, slots=True)
class KeepaliveSpec:
    """KeepaliveSpec: trigger 1 = periodic every ``interval_ms``; 0 = none."""

    trigger: int = 0
    interval_ms: int = 0

    @classmethod
    def from_parameter(cls, p: Parameter) -> KeepaliveSpec:
        if p.type != KEEPALIVE_SPEC or len(p.value) != 5:
            raise DecodeError("malformed KeepaliveSpec")
        trigger, interval = struct.unpack(">BI", p.value)
        return cls(trigger, interval)

    def to_parameter(self) -> Parameter:
        return tlv(KEEPALIVE_SPEC, struct.pack(">BI", self.trigger, self.interval_ms))
