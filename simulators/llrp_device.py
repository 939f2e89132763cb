"""The simulated reader's identity and configuration, as LLRP parameters.

It describes a 4-port fixed reader with a UTC clock (like the Impinj R420 the golden frames
come from): a transmit-power table from 10.00 to 30.00 dBm in 0.25 dB steps, two C1G2 modes,
one ROSpec at a time and no AccessSpecs. GET_READER_CAPABILITIES and GET_READER_CONFIG honour
RequestedData (and AntennaID, GPIPortNum, GPOPortNum), and "All" (0) returns every parameter
the message defines, in the order LLRP 1.0.1 §9.1.2 and §12.1.4 give. Defaults not set by a
client (report spec, event notifications, access report trigger) are those of the recorded
R420 configuration in the shared golden frames.

>>> from protocols.llrp.messages import MessageType
>>> caps = capabilities_response(1, DeviceProfile())
>>> caps.name, len(caps.params)
('GET_READER_CAPABILITIES_RESPONSE', 5)
>>> [p.type for p in config_response(2, DeviceProfile(), ReaderConfig(), requested=8).params]
[287, 220]
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from protocols.llrp.messages import Message, MessageType
from protocols.llrp.params import Parameter, tlv
from protocols.llrp.reports import LlrpStatus, StatusCode, response
from protocols.llrp.specs import REPORT_N_OR_ROSPEC_END, ContentSelector, KeepaliveSpec, ReportSpec

MANUFACTURER = 0  # no IANA enterprise number of our own: 0 marks a simulator
MODEL = 5084

DEFAULT_REPORT = ReportSpec(
    REPORT_N_OR_ROSPEC_END, 1, ContentSelector(antenna_id=True, peak_rssi=True, first_seen=True)
)
"""The reader's ROReportSpec until a client sets one (the recorded R420's default)."""

_DEFAULT_EVENTS = {event: event in (4, 8) for event in range(9)}  # as the recorded R420
_GPIO_PORTS = 4


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """What the simulated reader says about itself."""

    antennas: int = 4
    firmware: str = "coldtrace-sim-1"
    reader_id: bytes = b"\x00\x16\x25\xc0\x1d\x70\x00\x01"
    power_levels: int = 81  # 10.00 ... 30.00 dBm
    utc_clock: bool = True  # False: a reader whose clock was never set reports Uptime


@dataclass(slots=True)
class ReaderConfig:
    """What SET_READER_CONFIG changes and GET_READER_CONFIG reports."""

    keepalive: KeepaliveSpec = field(default_factory=KeepaliveSpec)
    report: ReportSpec = DEFAULT_REPORT
    hold_events: bool = False
    access_report_trigger: int = 1  # at the end of the AccessSpec (the R420's default)
    events: dict[int, bool] = field(default_factory=lambda: dict(_DEFAULT_EVENTS))


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def _general(profile: DeviceProfile) -> Parameter:
    flags = 0x4000 if profile.utc_clock else 0  # HasUTCClockCapability
    fields = struct.pack(">HHII", profile.antennas, flags, MANUFACTURER, MODEL)
    fields += _string(profile.firmware)
    sensitivity = tlv(139, struct.pack(">Hh", 1, 0))
    air = [tlv(140, struct.pack(">HHB", a, 1, 1)) for a in range(1, profile.antennas + 1)]
    gpio = tlv(141, struct.pack(">HH", _GPIO_PORTS, _GPIO_PORTS))
    return tlv(137, fields, sensitivity, *air, gpio)


def _llrp_capabilities() -> Parameter:
    # flags: CanReportBufferFillWarning; MaxPriority 1; one ROSpec; no AccessSpecs.
    return tlv(142, struct.pack(">BBHIIIII", 0x40, 1, 0, 1, 32, 1, 0, 8))


def _rf_mode(mode_id: int, *, dr: int, m: int, bdr: int, pie: int, tari: int) -> Parameter:
    return tlv(
        329,
        struct.pack(">IBBBBIIIII", mode_id, dr << 7, m, 1, 2, bdr, pie, tari, tari, 0),
    )


def _regulatory(profile: DeviceProfile) -> Parameter:
    powers = [
        tlv(145, struct.pack(">Hh", i + 1, 1000 + 25 * i)) for i in range(profile.power_levels)
    ]
    hop = tlv(147, struct.pack(">BBHI", 1, 0, 1, 915_250))
    freq = tlv(146, b"\x80", hop)
    modes = tlv(
        328,
        b"",
        _rf_mode(
            1000, dr=1, m=4, bdr=256_000, pie=1500, tari=25_000
        ),  # autoset-like dense reader mode
        _rf_mode(2, dr=1, m=4, bdr=250_000, pie=2000, tari=25_000),
    )
    band = tlv(144, b"", *powers, freq, modes)
    return tlv(143, struct.pack(">HH", 840, 1), band)  # US, FCC part 15


def _refused(message_type: int, message_id: int, text: str, field_no: int) -> Message:
    status = LlrpStatus(StatusCode.FIELD_ERROR, text, (field_no, StatusCode.A_INVALID))
    return response(message_type, message_id, status)


def capabilities_response(message_id: int, profile: DeviceProfile, requested: int = 0) -> Message:
    """GET_READER_CAPABILITIES_RESPONSE: 0 all, 1 general, 2 LLRP, 3 regulatory, 4 air."""
    parts = {
        1: _general(profile),
        2: _llrp_capabilities(),
        3: _regulatory(profile),
        4: tlv(327, struct.pack(">BH", 0x40, 2)),  # C1G2LLRPCapabilities
    }
    kind = MessageType.GET_READER_CAPABILITIES_RESPONSE
    if requested == 0:
        return response(kind, message_id, None, *parts.values())
    if requested not in parts:
        return _refused(kind, message_id, f"RequestedData {requested} is not defined", 0)
    return response(kind, message_id, None, parts[requested])


def _antenna_configuration(antenna: int, profile: DeviceProfile) -> Parameter:
    receiver = tlv(223, struct.pack(">H", 1))
    transmitter = tlv(224, struct.pack(">HHH", 1, 0, profile.power_levels))
    rf_control = tlv(335, struct.pack(">HH", 1000, 0))
    singulation = tlv(336, struct.pack(">BHI", 1 << 6, 32, 0))  # session 1, 32 tags
    inventory = tlv(330, b"\x00", rf_control, singulation)
    return tlv(222, struct.pack(">H", antenna), receiver, transmitter, inventory)


def _config_parts(profile: DeviceProfile, config: ReaderConfig) -> dict[int, list[Parameter]]:
    """Every GET_READER_CONFIG parameter by its RequestedData number (antennas, ports: all)."""
    antennas = range(1, profile.antennas + 1)
    ports = range(1, _GPIO_PORTS + 1)
    events = [
        tlv(245, struct.pack(">HB", event, 0x80 if on else 0))
        for event, on in sorted(config.events.items())
    ]
    parts = {
        1: [tlv(218, struct.pack(">BH", 0, len(profile.reader_id)) + profile.reader_id)],
        2: [tlv(221, struct.pack(">BHh", 0x80, a, 0)) for a in antennas],
        3: [_antenna_configuration(a, profile) for a in antennas],
        5: [tlv(244, b"", *events)],
        4: [config.report.to_parameter()],
        6: [tlv(239, struct.pack(">B", config.access_report_trigger))],
        8: [config.keepalive.to_parameter()],
        9: [tlv(225, struct.pack(">HBB", port, 0, 0)) for port in ports],
        10: [tlv(219, struct.pack(">HB", port, 0)) for port in ports],
        11: [tlv(226, b"\x80" if config.hold_events else b"\x00")],
    }
    # LLRPConfigurationStateValue: changes whenever the configuration does (§12.2.1).
    digest = zlib.crc32(b"".join(p.encode() for ps in parts.values() for p in ps))
    parts[7] = [tlv(217, struct.pack(">I", digest))]
    order = (1, 2, 3, 5, 4, 6, 7, 8, 9, 10, 11)  # the message's parameter order
    return {n: parts[n] for n in order}


def config_response(
    message_id: int,
    profile: DeviceProfile,
    config: ReaderConfig,
    *,
    antenna: int = 0,
    requested: int = 0,
    gpi_port: int = 0,
    gpo_port: int = 0,
) -> Message:
    """GET_READER_CONFIG_RESPONSE for RequestedData ``requested`` (0 = all); ``antenna``,
    ``gpi_port`` and ``gpo_port`` select one antenna or port (0 = all)."""
    kind = MessageType.GET_READER_CONFIG_RESPONSE
    if antenna > profile.antennas:
        return _refused(kind, message_id, f"no antenna {antenna}", 0)
    if gpi_port > _GPIO_PORTS or gpo_port > _GPIO_PORTS:
        return _refused(kind, message_id, "no such GPI/GPO port", 2 if gpi_port else 3)
    parts = _config_parts(profile, config)
    if requested != 0 and requested not in parts:
        return _refused(kind, message_id, f"RequestedData {requested} is not defined", 1)
    chosen = {n: ps for n, ps in parts.items() if requested in (0, n)}
    selected = {2: antenna, 3: antenna, 9: gpi_port, 10: gpo_port}
    out: list[Parameter] = []
    for number, params in chosen.items():
        only = selected.get(number, 0)
        out += params if only == 0 else [params[only - 1]]
    return response(kind, message_id, None, *out)
