"""Typed views of what a reader reports: tag reports, reader events and LLRPStatus.

Each view reads from and writes to :class:`~protocols.llrp.params.Parameter` trees; parameters a
view does not model are kept in ``extra`` so nothing is lost on the way through.

>>> r = TagReport(epc="3000ABCDEF00000000000003", antenna_id=1, peak_rssi=-48,
...               first_seen_utc=1594174805140192)
>>> r.to_parameter().encode().hex()
'00f0001f8d3000abcdef0000000000000381000186d0820005a9e4bef862e0'
>>> TagReport.from_parameter(r.to_parameter()) == r
True
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from protocols.llrp.errors import DecodeError
from protocols.llrp.messages import Message, MessageType
from protocols.llrp.params import Parameter, tlv, tv

TAG_REPORT_DATA = 240
EPC_DATA = 241
EPC_96 = 13
UTC_TIMESTAMP = 128
UPTIME = 129
READER_EVENT_NOTIFICATION_DATA = 246
CONNECTION_ATTEMPT_EVENT = 256
CONNECTION_CLOSE_EVENT = 257
LLRP_STATUS = 287
FIELD_ERROR = 288
PARAMETER_ERROR = 289

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_S8 = struct.Struct(">b")

# TV fields of TagReportData in specification order: (attribute, TV type, struct).
_TAG_FIELDS: tuple[tuple[str, int, struct.Struct], ...] = (
    ("rospec_id", 9, _U32),
    ("spec_index", 14, _U16),
    ("inventory_parameter_spec_id", 10, _U16),
    ("antenna_id", 1, _U16),
    ("peak_rssi", 6, _S8),
    ("channel_index", 7, _U16),
    ("first_seen_utc", 2, _U64),
    ("first_seen_uptime", 3, _U64),
    ("last_seen_utc", 4, _U64),
    ("last_seen_uptime", 5, _U64),
    ("tag_seen_count", 8, _U16),
    ("access_spec_id", 16, _U32),
)
_TAG_BY_TYPE = {t: (name, s) for name, t, s in _TAG_FIELDS}
_ACCESS_SPEC_ID = 16


def _uint(p: Parameter, s: struct.Struct) -> int:
    if len(p.value) != s.size:
        raise DecodeError(f"parameter {p.type} holds {len(p.value)} bytes, expected {s.size}")
    value: int = s.unpack(p.value)[0]
    return value


@dataclass(frozen=True, slots=True)
class TagReport:
    """One TagReportData: an EPC and whatever the report spec asked the reader to add.

    Timestamps are microseconds (UTC since the Unix epoch, or since the reader's boot).
    """

    epc: str
    epc_bits: int = 96
    rospec_id: int | None = None
    spec_index: int | None = None
    inventory_parameter_spec_id: int | None = None
    antenna_id: int | None = None
    peak_rssi: int | None = None
    channel_index: int | None = None
    first_seen_utc: int | None = None
    first_seen_uptime: int | None = None
    last_seen_utc: int | None = None
    last_seen_uptime: int | None = None
    tag_seen_count: int | None = None
    access_spec_id: int | None = None
    extra: tuple[Parameter, ...] = field(default=())

    @classmethod
    def from_parameter(cls, p: Parameter) -> TagReport:
        """Read a TagReportData parameter."""
        if p.type != TAG_REPORT_DATA:
            raise DecodeError(f"expected TagReportData (240), got parameter {p.type}")
        values: dict[str, int] = {}
        epc: tuple[str, int] | None = None
        extra: list[Parameter] = []
        try:
            for c in p.children:
                if not c.tv:
                    if c.type == EPC_DATA:
                        bits = _U16.unpack_from(c.value)[0]
                        epc = (c.value[2:].hex().upper(), bits)
                    else:
                        extra.append(c)
                elif c.type == EPC_96:
                    epc = (c.value.hex().upper(), 96)
                else:
                    field_ = _TAG_BY_TYPE.get(c.type)
                    if field_ is None:
                        extra.append(c)
                    else:
                        values[field_[0]] = field_[1].unpack(c.value)[0]
        except struct.error as err:
            raise DecodeError(f"malformed field in TagReportData: {err}") from err
        if epc is None:
            raise DecodeError("TagReportData without EPC-96 or EPCData")
        return cls(epc=epc[0], epc_bits=epc[1], extra=tuple(extra), **values)

    def to_parameter(self) -> Parameter:
        """Write a TagReportData parameter (EPC-96 when the EPC has 96 bits, else EPCData)."""
        raw = bytes.fromhex(self.epc)
        children: list[Parameter] = []
        if self.epc_bits == 96 and len(raw) == 12:
            children.append(tv(EPC_96, raw))
        else:
            children.append(tlv(EPC_DATA, _U16.pack(self.epc_bits) + raw))
        air_and_custom = [c for c in self.extra if c.type != _ACCESS_SPEC_ID]
        for name, type_, s in _TAG_FIELDS:
            if type_ == _ACCESS_SPEC_ID:
                # AirProtocolTagData (C1G2PC, CRC...) sits before AccessSpecID in the spec.
                children.extend(c for c in air_and_custom if c.tv)
            value = getattr(self, name)
            if value is not None:
                children.append(tv(type_, s.pack(value)))
        children.extend(c for c in air_and_custom if not c.tv)
        return tlv(TAG_REPORT_DATA, b"", *children)


def tag_reports(message: Message) -> list[TagReport]:
    """Every TagReportData of an RO_ACCESS_REPORT."""
    if message.type != MessageType.RO_ACCESS_REPORT:
        raise DecodeError(f"expected RO_ACCESS_REPORT, got {message.name}")
    return [TagReport.from_parameter(p) for p in message.params if p.type == TAG_REPORT_DATA]


def ro_access_report(message_id: int, reports: list[TagReport]) -> Message:
    """Build an RO_ACCESS_REPORT message."""
    params = tuple(r.to_parameter() for r in reports)
    return Message(MessageType.RO_ACCESS_REPORT, message_id, b"", params)


@dataclass(frozen=True, slots=True)
class ReaderEvent:
    """ReaderEventNotificationData: a timestamp and the events this codec models."""

    utc: int | None = None
    uptime: int | None = None
    connection_attempt: int | None = None
    connection_close: bool = False
    extra: tuple[Parameter, ...] = ()

    @classmethod
    def from_message(cls, message: Message) -> ReaderEvent:
        """Read a READER_EVENT_NOTIFICATION."""
        data = message.param(READER_EVENT_NOTIFICATION_DATA)
        if message.type != MessageType.READER_EVENT_NOTIFICATION or data is None:
            raise DecodeError(f"{message.name} carries no ReaderEventNotificationData")
        utc = uptime = attempt = None
        close = False
        extra: list[Parameter] = []
        for c in data.children:
            if c.type == UTC_TIMESTAMP:
                utc = _uint(c, _U64)
            elif c.type == UPTIME:
                uptime = _uint(c, _U64)
            elif c.type == CONNECTION_ATTEMPT_EVENT:
                attempt = _uint(c, _U16)
            elif c.type == CONNECTION_CLOSE_EVENT:
                close = True
            else:
                extra.append(c)
        return cls(utc, uptime, attempt, close, tuple(extra))

    def to_message(self, message_id: int) -> Message:
        """Build a READER_EVENT_NOTIFICATION."""
        children: list[Parameter] = []
        if self.utc is not None:
            children.append(tlv(UTC_TIMESTAMP, _U64.pack(self.utc)))
        if self.uptime is not None:
            children.append(tlv(UPTIME, _U64.pack(self.uptime)))
        children.extend(self.extra)
        if self.connection_attempt is not None:
            children.append(tlv(CONNECTION_ATTEMPT_EVENT, _U16.pack(self.connection_attempt)))
        if self.connection_close:
            children.append(tlv(CONNECTION_CLOSE_EVENT))
        data = tlv(READER_EVENT_NOTIFICATION_DATA, b"", *children)
        return Message(MessageType.READER_EVENT_NOTIFICATION, message_id, b"", (data,))


class StatusCode:
    """LLRPStatus codes used here (LLRP 1.0.1 section 14.2)."""

    SUCCESS = 0
    PARAMETER_ERROR = 100
    FIELD_ERROR = 101
    UNEXPECTED_PARAMETER = 102
    MISSING_PARAMETER = 103
    UNKNOWN_FIELD = 108
    UNSUPPORTED_MESSAGE = 109
    UNSUPPORTED_VERSION = 110
    UNSUPPORTED_PARAMETER = 111
    A_INVALID = 300
    DEVICE_ERROR = 401


_STATUS_NAMES = {
    0: "M_Success",
    100: "M_ParameterError",
    101: "M_FieldError",
    102: "M_UnexpectedParameter",
    103: "M_MissingParameter",
    104: "M_DuplicateParameter",
    105: "M_OverflowParameter",
    106: "M_OverflowField",
    107: "M_UnknownParameter",
    108: "M_UnknownField",
    109: "M_UnsupportedMessage",
    110: "M_UnsupportedVersion",
    111: "M_UnsupportedParameter",
    112: "M_UnexpectedMessage",  # LLRP 1.1
    200: "P_ParameterError",
    201: "P_FieldError",
    202: "P_UnexpectedParameter",
    203: "P_MissingParameter",
    204: "P_DuplicateParameter",
    205: "P_OverflowParameter",
    206: "P_OverflowField",
    207: "P_UnknownParameter",
    208: "P_UnknownField",
    209: "P_UnsupportedParameter",
    300: "A_Invalid",
    301: "A_OutOfRange",
    401: "R_DeviceError",
}


def status_name(code: int) -> str:
    """An LLRPStatus code by its name in the specification (LLRP 1.0.1 §14.2.1, 1.1 §15.2.1).

    >>> status_name(110), status_name(999)
    ('M_UnsupportedVersion', 'status 999')
    """
    return _STATUS_NAMES.get(code, f"status {code}")


@dataclass(frozen=True, slots=True)
class LlrpStatus:
    """The LLRPStatus parameter of responses and ERROR_MESSAGE."""

    code: int = StatusCode.SUCCESS
    description: str = ""
    field_error: tuple[int, int] | None = None
    parameter_error: tuple[int, int] | None = None

    @property
    def ok(self) -> bool:
        return self.code == StatusCode.SUCCESS

    def __str__(self) -> str:
        """``M_UnsupportedVersion: <the reader's description>``."""
        text = status_name(self.code)
        return f"{text}: {self.description}" if self.description else text

    @classmethod
    def from_parameter(cls, p: Parameter) -> LlrpStatus:
        if p.type != LLRP_STATUS:
            raise DecodeError(f"expected LLRPStatus (287), got parameter {p.type}")
        code, size = struct.unpack_from(">HH", p.value)
        try:
            text = p.value[4 : 4 + size].decode("utf-8")
        except UnicodeDecodeError as err:
            raise DecodeError("LLRPStatus ErrorDescription is not UTF-8") from err
        fe = p.child(FIELD_ERROR)
        pe = p.child(PARAMETER_ERROR)
        return cls(
            code,
            text,
            struct.unpack(">HH", fe.value) if fe else None,
            struct.unpack(">HH", pe.value) if pe else None,
        )

    def to_parameter(self) -> Parameter:
        text = self.description.encode("utf-8")
        children: list[Parameter] = []
        if self.field_error is not None:
            children.append(tlv(FIELD_ERROR, struct.pack(">HH", *self.field_error)))
        if self.parameter_error is not None:
            children.append(tlv(PARAMETER_ERROR, struct.pack(">HH", *self.parameter_error)))
        return tlv(LLRP_STATUS, struct.pack(">HH", self.code, len(text)) + text, *children)


def status_of(message: Message) -> LlrpStatus:
    """The LLRPStatus of a response or ERROR_MESSAGE."""
    p = message.param(LLRP_STATUS)
    if p is None:
        raise DecodeError(f"{message.name} carries no LLRPStatus")
    return LlrpStatus.from_parameter(p)


def response(
    type_: int, message_id: int, status: LlrpStatus | None = None, *params: Parameter
) -> Message:
    """A response message: LLRPStatus first, then ``params``."""
    first = (status or LlrpStatus()).to_parameter()
    return Message(type_, message_id, b"", (first, *params))
