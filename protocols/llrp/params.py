"""LLRP parameters: TV (1-byte header, fixed length by type) and TLV (10-bit type, u16 length).

A :class:`Parameter` keeps its fixed fields as raw bytes and its sub-parameters as a tuple, so
decoding then encoding gives back the very same bytes. The split between fixed fields and
sub-parameters needs each type's fixed-part length, taken from the LLRP 1.0.1 specification
(:data:`TLV_FIXED`); a TLV type not in that table (vendor extensions, LLRP 1.1 additions) is kept
whole as an *opaque* parameter and never breaks decoding. An unknown TV type does: its length
cannot be known, so the rest of the body is unreadable (:class:`DecodeError`).

>>> p = decode_params(bytes.fromhex("8100018d3000abcdef0000000000000386d0"))
>>> [(q.type, q.value.hex()) for q in p]
[(1, '0001'), (13, '3000abcdef00000000000003'), (6, 'd0')]
>>> encode_params(p).hex()
'8100018d3000abcdef0000000000000386d0'
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import NamedTuple

from protocols.llrp.errors import DecodeError

TV_LENGTHS: dict[int, int] = {
    1: 2,  # AntennaID u16
    2: 8,  # FirstSeenTimestampUTC u64 (µs)
    3: 8,  # FirstSeenTimestampUptime u64
    4: 8,  # LastSeenTimestampUTC u64
    5: 8,  # LastSeenTimestampUptime u64
    6: 1,  # PeakRSSI s8 (dBm)
    7: 2,  # ChannelIndex u16
    8: 2,  # TagSeenCount u16
    9: 4,  # ROSpecID u32
    10: 2,  # InventoryParameterSpecID u16
    11: 2,  # C1G2CRC u16
    12: 2,  # C1G2PC u16
    13: 12,  # EPC-96
    14: 2,  # SpecIndex u16
    15: 2,  # ClientRequestOpSpecResult u16
    16: 4,  # AccessSpecID u32
    17: 2,  # OpSpecID u16
    18: 4,  # C1G2SingulationDetails u16 + u16
    19: 2,  # C1G2XPCW1 (LLRP 1.1)
    20: 2,  # C1G2XPCW2 (LLRP 1.1)
}
"""Value length in bytes of each TV parameter type."""

CUSTOM_PARAMETER = 1023
_U16 = struct.Struct(">H")
_TLV_HEADER = struct.Struct(">HH")

FixedLength = Callable[[bytes], int]


def _const(n: int) -> FixedLength:
    return lambda _body: n


def _u16_at(body: bytes, offset: int) -> int:
    if len(body) < offset + 2:
        raise DecodeError("parameter too short for its length field")
    value: int = _U16.unpack_from(body, offset)[0]
    return value


def _string_at(offset: int) -> FixedLength:
    """UTF-8 string or byte array with a u16 count at ``offset``, then the bytes."""
    return lambda body: offset + 2 + _u16_at(body, offset)


def _array_at(offset: int, item: int, head: int = 2) -> FixedLength:
    return lambda body: offset + head + item * _u16_at(body, offset)


def _bits_at(offset: int) -> FixedLength:
    return lambda body: offset + 2 + (_u16_at(body, offset) + 7) // 8


TLV_FIXED: dict[int, FixedLength] = {
    128: _const(8),  # UTCTimestamp
    129: _const(8),  # Uptime
    137: _string_at(12),  # GeneralDeviceCapabilities (firmware version string at 12)
    139: _const(4),  # ReceiveSensitivityTableEntry
    140: _array_at(2, 1),  # PerAntennaAirProtocol
    141: _const(4),  # GPIOCapabilities
    142: _const(24),  # LLRPCapabilities
    143: _const(4),  # RegulatoryCapabilities
    144: _const(0),  # UHFBandCapabilities
    145: _const(4),  # TransmitPowerLevelTableEntry
    146: _const(1),  # FrequencyInformation
    147: lambda body: 4 + 4 * _u16_at(body, 2),  # FrequencyHopTable
    148: _array_at(0, 4),  # FixedFrequencyTable
    149: _const(6),  # PerAntennaReceiveSensitivityRange
    177: _const(6),  # ROSpec
    178: _const(0),  # ROBoundarySpec
    179: _const(1),  # ROSpecStartTrigger
    180: _const(8),  # PeriodicTriggerValue
    181: _const(7),  # GPITriggerValue
    182: _const(5),  # ROSpecStopTrigger
    183: _array_at(0, 2),  # AISpec
    184: _const(5),  # AISpecStopTrigger
    185: _const(12),  # TagObservationTrigger
    186: _const(3),  # InventoryParameterSpec
    207: _const(12),  # AccessSpec
    208: _const(3),  # AccessSpecStopTrigger
    209: _const(0),  # AccessCommand
    217: _const(4),  # LLRPConfigurationStateValue
    218: _string_at(1),  # Identification
    219: _const(3),  # GPOWriteData
    220: _const(5),  # KeepaliveSpec
    221: _const(5),  # AntennaProperties
    222: _const(2),  # AntennaConfiguration
    223: _const(2),  # RFReceiver
    224: _const(6),  # RFTransmitter
    225: _const(4),  # GPIPortCurrentState
    226: _const(1),  # EventsAndReports
    237: _const(3),  # ROReportSpec
    238: _const(2),  # TagReportContentSelector
    239: _const(1),  # AccessReportSpec
    240: _const(0),  # TagReportData
    241: _bits_at(0),  # EPCData
    244: _const(0),  # ReaderEventNotificationSpec
    245: _const(3),  # EventNotificationState
    246: _const(0),  # ReaderEventNotificationData
    247: _const(4),  # HoppingEvent
    248: _const(3),  # GPIEvent
    249: _const(9),  # ROSpecEvent
    250: _const(1),  # ReportBufferLevelWarningEvent
    251: _const(0),  # ReportBufferOverflowErrorEvent
    252: _string_at(0),  # ReaderExceptionEvent
    253: _const(7),  # RFSurveyEvent
    254: _const(7),  # AISpecEvent
    255: _const(3),  # AntennaEvent
    256: _const(2),  # ConnectionAttemptEvent
    257: _const(0),  # ConnectionCloseEvent
    287: _string_at(2),  # LLRPStatus
    288: _const(4),  # FieldError
    289: _const(4),  # ParameterError
    327: _const(3),  # C1G2LLRPCapabilities
    328: _const(0),  # UHFC1G2RFModeTable
    329: _const(28),  # UHFC1G2RFModeTableEntry
    330: _const(1),  # C1G2InventoryCommand
    331: _const(1),  # C1G2Filter
    332: _bits_at(3),  # C1G2TagInventoryMask
    333: _const(2),  # C1G2TagInventoryStateAwareFilterAction
    334: _const(1),  # C1G2TagInventoryStateUnawareFilterAction
    335: _const(4),  # C1G2RFControl
    336: _const(7),  # C1G2SingulationControl
    337: _const(1),  # C1G2TagInventoryStateAwareSingulationAction
    348: _const(1),  # C1G2EPCMemorySelector
    363: _const(2),  # MaximumReceiveSensitivity
    365: _const(8),  # RFSurveyFrequencyCapabilities
}
"""Fixed-part length (bytes after the 4-byte TLV header, before sub-parameters) per TLV type."""


class Parameter(NamedTuple):
    """One LLRP parameter.

    ``value`` holds a TV parameter's value, or a TLV parameter's fixed fields; for an opaque TLV
    (a type this codec does not know) it holds the whole body and ``children`` is empty.
    """

    type: int
    value: bytes = b""
    children: tuple[Parameter, ...] = ()  # a NamedTuple: cheap to build, 150k+ per second
    tv: bool = False
    opaque: bool = False

    def child(self, type_: int) -> Parameter | None:
        """The first sub-parameter of ``type_``, if any."""
        for c in self.children:
            if c.type == type_:
                return c
        return None

    def all(self, type_: int) -> list[Parameter]:
        """Every sub-parameter of ``type_``, in order."""
        return [c for c in self.children if c.type == type_]

    def encode(self) -> bytes:
        """Wire bytes of this parameter and its sub-parameters."""
        if self.tv:
            return bytes((0x80 | self.type,)) + self.value
        inner = self.value + b"".join(c.encode() for c in self.children)
        length = 4 + len(inner)
        if length > 0xFFFF:
            raise ValueError(f"TLV parameter {self.type} is {length} bytes, above 65535")
        return _TLV_HEADER.pack(self.type & 0x3FF, length) + inner


def tv(type_: int, value: bytes) -> Parameter:
    """A TV parameter, checked against its fixed length.

    >>> tv(1, b"\\x00\\x02").encode().hex()
    '810002'
    """
    expected = TV_LENGTHS.get(type_)
    if expected is None or len(value) != expected:
        raise ValueError(f"TV parameter {type_} takes {expected} bytes, got {len(value)}")
    return Parameter(type_, value, tv=True)


def tlv(type_: int, value: bytes = b"", *children: Parameter) -> Parameter:
    """A TLV parameter with fixed fields ``value`` and sub-parameters ``children``.

    >>> tlv(256, b"\\x00\\x00").encode().hex()
    '010000060000'
    """
    return Parameter(type_, value, tuple(children), opaque=type_ not in TLV_FIXED)


def decode_params(data: bytes) -> tuple[Parameter, ...]:
    """Decode a run of parameters filling ``data`` exactly."""
    out: list[Parameter] = []
    append = out.append
    tv_lengths = TV_LENGTHS
    offset = 0
    end = len(data)
    while offset < end:
        first = data[offset]
        if first & 0x80:  # the hot path: a tag report is mostly TV parameters
            type_ = first & 0x7F
            size = tv_lengths.get(type_)
            if size is None:
                raise DecodeError(f"unknown TV parameter type {type_} at offset {offset}")
            stop = offset + 1 + size
            if stop > end:
                raise DecodeError(f"TV parameter {type_} truncated at offset {offset}")
            append(Parameter(type_, data[offset + 1 : stop], (), True, False))
            offset = stop
            continue
        if offset + 4 > end:
            raise DecodeError(f"TLV header truncated at offset {offset}")
        word, length = _TLV_HEADER.unpack_from(data, offset)
        if length < 4 or offset + length > end:
            raise DecodeError(f"TLV parameter length {length} out of bounds at offset {offset}")
        out.append(_decode_tlv(word & 0x3FF, data[offset + 4 : offset + length]))
        offset += length
    return tuple(out)


def _decode_tlv(type_: int, body: bytes) -> Parameter:
    fixed = TLV_FIXED.get(type_)
    if fixed is None:
        return Parameter(type_, body, opaque=True)
    size = fixed(body)
    if size > len(body):
        raise DecodeError(f"TLV parameter {type_} needs {size} bytes of fields, has {len(body)}")
    try:
        children = decode_params(body[size:])
    except DecodeError as err:
        raise DecodeError(f"in parameter {type_}: {err}") from err
    return Parameter(type_, body[:size], children)


def encode_params(params: Iterable[Parameter]) -> bytes:
    """Concatenate the wire bytes of ``params``."""
    return b"".join(p.encode() for p in params)
