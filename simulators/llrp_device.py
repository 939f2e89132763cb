"""The simulated reader's identity: its capabilities and configuration, as LLRP parameters.

It describes a 4-port fixed reader with a UTC clock (like the Impinj R420 the golden frames
come from): a transmit-power table from 10.00 to 30.00 dBm in 0.25 dB steps, two C1G2 modes,
one ROSpec at a time and no AccessSpecs.

>>> from protocols.llrp.messages import MessageType
>>> caps = capabilities_response(1, DeviceProfile())
>>> caps.name, len(caps.params)
('GET_READER_CAPABILITIES_RESPONSE', 5)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from protocols.llrp.messages import Message, MessageType
from protocols.llrp.params import Parameter, tlv
from protocols.llrp.reports import response
from protocols.llrp.specs import KeepaliveSpec

MANUFACTURER = 0  # no IANA enterprise number of our own: 0 marks a simulator
MODEL = 5084


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """What the simulated reader says about itself."""

    antennas: int = 4
    firmware: str = "coldtrace-sim-1"
    reader_id: bytes = b"\x00\x16\x25\xc0\x1d\x70\x00\x01"
    power_levels: int = 81  # 10.00 ... 30.00 dBm


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def _general(profile: DeviceProfile) -> Parameter:
    fields = struct.pack(">HHII", profile.antennas, 0x4000, MANUFACTURER, MODEL)
    fields += _string(profile.firmware)
    sensitivity = tlv(139, struct.pack(">Hh", 1, 0))
    air = [tlv(140, struct.pack(">HHB", a, 1, 1)) for a in range(1, profile.antennas + 1)]
    gpio = tlv(141, struct.pack(">HH", 4, 4))
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


def capabilities_response(message_id: int, profile: DeviceProfile) -> Message:
    """GET_READER_CAPABILITIES_RESPONSE describing ``profile``."""
    c1g2 = tlv(327, struct.pack(">BH", 0x40, 2))
    return response(
        MessageType.GET_READER_CAPABILITIES_RESPONSE,
        message_id,
        None,
        _general(profile),
        _llrp_capabilities(),
        _regulatory(profile),
        c1g2,
    )


def config_response(
    message_id: int, profile: DeviceProfile, keepalive: KeepaliveSpec, *, held: bool = False
) -> Message:
    """GET_READER_CONFIG_RESPONSE: identification, antennas, keepalive, events and reports."""
    ident = tlv(218, struct.pack(">BH", 0, len(profile.reader_id)) + profile.reader_id)
    props = [tlv(221, struct.pack(">BHh", 0x80, a, 0)) for a in range(1, profile.antennas + 1)]
    holding = tlv(226, b"\x80" if held else b"\x00")
    return response(
        MessageType.GET_READER_CONFIG_RESPONSE,
        message_id,
        None,
        ident,
        *props,
        keepalive.to_parameter(),
        holding,
    )
