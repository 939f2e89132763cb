"""Milesight EM300-TH LoRaWAN frames (channel id, channel type, value), as the vendor documents.

=========  =========  ======  ====================================================
channel    type       bytes   value
=========  =========  ======  ====================================================
0x01       0x75       1       battery, %
0x03       0x67       2       temperature, int16 little-endian, 0.1 °C
0x04       0x68       1       humidity, uint8, 0.5 %RH
0x20       0xCE       8       history: uint32 LE Unix time, int16 temp, uint8 hum, 1 reserved
0xFF       0x01/...   n       device information sent after joining (skipped)
=========  =========  ======  ====================================================

>>> frame = decode_em300_th(bytes.fromhex("01755C03673401046865"))
>>> (frame.battery, frame.temperature, frame.humidity)
(92, 30.8, 50.5)
>>> decode_em300_th(bytes.fromhex("20CE9E74466310015D00")).history
[(1665561758, 27.2, 46.5)]
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from protocols.payloads.common import PayloadError

# Device-information channels (0xFF, type) -> value length, sent on power-on and join.
_INFO_LENGTHS = {0x01: 1, 0x09: 2, 0x0A: 2, 0x0B: 1, 0x0F: 1, 0x16: 8}


@dataclass
class Em300Frame:
    battery: int | None = None
    temperature: float | None = None
    humidity: float | None = None
    history: list[tuple[int, float, float]] = field(default_factory=list)
    info_only: bool = True
    """True when the frame carried only device information (nothing to record)."""


def decode_em300_th(data: bytes) -> Em300Frame:
    """Decodes one frame; raises PayloadError on a truncated frame or an unknown channel."""
    frame = Em300Frame()
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise PayloadError(f"frame truncated at byte {i}")
        channel, kind = data[i], data[i + 1]
        i += 2
        length = _length(channel, kind, i)
        if i + length > len(data):
            raise PayloadError(f"channel 0x{channel:02X} 0x{kind:02X} truncated at byte {i}")
        value = data[i : i + length]
        i += length
        _apply(frame, channel, kind, value)
    return frame


def _length(channel: int, kind: int, at: int) -> int:
    known = {(0x01, 0x75): 1, (0x03, 0x67): 2, (0x04, 0x68): 1, (0x20, 0xCE): 8}
    if (channel, kind) in known:
        return known[(channel, kind)]
    if channel == 0xFF and kind in _INFO_LENGTHS:
        return _INFO_LENGTHS[kind]
    raise PayloadError(f"unknown channel 0x{channel:02X} type 0x{kind:02X} at byte {at - 2}")


def _apply(frame: Em300Frame, channel: int, kind: int, value: bytes) -> None:
    if channel == 0xFF:
        return
    frame.info_only = False
    if channel == 0x01:
        frame.battery = value[0]
    elif channel == 0x03:
        frame.temperature = struct.unpack("<h", value)[0] / 10
    elif channel == 0x04:
        frame.humidity = value[0] / 2
    else:
        stamp, temp, hum = struct.unpack("<IhB", value[:7])
        frame.history.append((stamp, temp / 10, hum / 2))
