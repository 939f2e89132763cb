"""LLRP 1.0.1 messages: type numbers, fixed fields and parameters.

A :class:`Message` is a frame whose body is split into fixed fields (raw bytes) and parameters.
Message types this codec does not know (and CUSTOM_MESSAGE) keep their body whole (``opaque``).

>>> m = Message(MessageType.KEEPALIVE_ACK, 9)
>>> decode_message(Framer().feed(m.encode())[0]) == m
True
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from protocols.llrp.errors import DecodeError
from protocols.llrp.frame import Frame, Framer, encode_frame
from protocols.llrp.params import Parameter, decode_params, encode_params

_U32 = struct.Struct(">I")


class MessageType(IntEnum):
    GET_READER_CAPABILITIES = 1
    GET_READER_CONFIG = 2
    SET_READER_CONFIG = 3
    CLOSE_CONNECTION_RESPONSE = 4
    GET_READER_CAPABILITIES_RESPONSE = 11
    GET_READER_CONFIG_RESPONSE = 12
    SET_READER_CONFIG_RESPONSE = 13
    CLOSE_CONNECTION = 14
    ADD_ROSPEC = 20
    DELETE_ROSPEC = 21
    START_ROSPEC = 22
    STOP_ROSPEC = 23
    ENABLE_ROSPEC = 24
    DISABLE_ROSPEC = 25
    GET_ROSPECS = 26
    ADD_ROSPEC_RESPONSE = 30
    DELETE_ROSPEC_RESPONSE = 31
    START_ROSPEC_RESPONSE = 32
    STOP_ROSPEC_RESPONSE = 33
    ENABLE_ROSPEC_RESPONSE = 34
    DISABLE_ROSPEC_RESPONSE = 35
    GET_ROSPECS_RESPONSE = 36
    GET_SUPPORTED_VERSION = 46  # LLRP 1.1 (version negotiation)
    SET_PROTOCOL_VERSION = 47  # LLRP 1.1
    ADD_ACCESSSPEC = 40
    DELETE_ACCESSSPEC = 41
    ENABLE_ACCESSSPEC = 42
    DISABLE_ACCESSSPEC = 43
    GET_ACCESSSPECS = 44
    ADD_ACCESSSPEC_RESPONSE = 50
    DELETE_ACCESSSPEC_RESPONSE = 51
    ENABLE_ACCESSSPEC_RESPONSE = 52
    DISABLE_ACCESSSPEC_RESPONSE = 53
    GET_ACCESSSPECS_RESPONSE = 54
    GET_SUPPORTED_VERSION_RESPONSE = 56  # LLRP 1.1
    SET_PROTOCOL_VERSION_RESPONSE = 57  # LLRP 1.1
    GET_REPORT = 60
    RO_ACCESS_REPORT = 61
    KEEPALIVE = 62
    READER_EVENT_NOTIFICATION = 63
    ENABLE_EVENTS_AND_REPORTS = 64
    KEEPALIVE_ACK = 72
    ERROR_MESSAGE = 100
    CUSTOM_MESSAGE = 1023


_SPEC_ID_MESSAGES = {
    MessageType.DELETE_ROSPEC,
    MessageType.START_ROSPEC,
    MessageType.STOP_ROSPEC,
    MessageType.ENABLE_ROSPEC,
    MessageType.DISABLE_ROSPEC,
    MessageType.DELETE_ACCESSSPEC,
    MessageType.ENABLE_ACCESSSPEC,
    MessageType.DISABLE_ACCESSSPEC,
}

FIXED_FIELDS: dict[int, int] = {t.value: 0 for t in MessageType if t != MessageType.CUSTOM_MESSAGE}
FIXED_FIELDS.update({t.value: 4 for t in _SPEC_ID_MESSAGES})
FIXED_FIELDS[MessageType.GET_READER_CAPABILITIES] = 1  # RequestedData
FIXED_FIELDS[MessageType.GET_READER_CONFIG] = 7  # AntennaID, RequestedData, GPI, GPO port
FIXED_FIELDS[MessageType.SET_READER_CONFIG] = 1  # ResetToFactoryDefault bit
FIXED_FIELDS[MessageType.SET_PROTOCOL_VERSION] = 1  # ProtocolVersion
FIXED_FIELDS[MessageType.GET_SUPPORTED_VERSION_RESPONSE] = 2  # CurrentVersion, SupportedVersion
"""Length in bytes of each known message type's fixed fields (before its parameters)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One LLRP message: type, id, fixed fields and parameters (or an opaque body)."""

    type: int
    id: int
    fields: bytes = b""
    params: tuple[Parameter, ...] = ()
    version: int = 1
    opaque: bool = False

    @property
    def name(self) -> str:
        """The message type's name, or ``TYPE_<n>`` when unknown."""
        try:
            return MessageType(self.type).name
        except ValueError:
            return f"TYPE_{self.type}"

    def param(self, type_: int) -> Parameter | None:
        """The first top-level parameter of ``type_``, if any."""
        for p in self.params:
            if p.type == type_:
                return p
        return None

    def spec_id(self) -> int:
        """The ROSpecID / AccessSpecID field of the *_ROSPEC / *_ACCESSSPEC messages."""
        if len(self.fields) != 4:
            raise DecodeError(f"{self.name} has no spec id field")
        value: int = _U32.unpack(self.fields)[0]
        return value

    def body(self) -> bytes:
        """The message body (fields then parameters)."""
        return self.fields + encode_params(self.params)

    def encode(self) -> bytes:
        """The whole message on the wire, header included."""
        return encode_frame(self.type, self.id, self.body(), self.version)


def decode_message(frame: Frame) -> Message:
    """Split a frame's body into fixed fields and parameters.

    >>> m = decode_message(Frame(1, 21, 5, bytes(4)))
    >>> (m.name, m.spec_id())
    ('DELETE_ROSPEC', 0)
    """
    fixed = FIXED_FIELDS.get(frame.message_type)
    if fixed is None:
        return Message(frame.message_type, frame.message_id, frame.body, (), frame.version, True)
    if len(frame.body) < fixed:
        raise DecodeError(
            f"message type {frame.message_type} needs {fixed} bytes of fields, "
            f"has {len(frame.body)}"
        )
    try:
        params = decode_params(frame.body[fixed:])
    except DecodeError as err:
        raise DecodeError(
            f"message type {frame.message_type} id {frame.message_id}: {err}"
        ) from err
    return Message(frame.message_type, frame.message_id, frame.body[:fixed], params, frame.version)


def decode_bytes(data: bytes) -> Message:
    """Decode exactly one whole message (header included).

    >>> decode_bytes(bytes.fromhex("043e0000000a00000007")).name
    'KEEPALIVE'
    """
    framer = Framer()
    frames = framer.feed(data)
    if len(frames) != 1 or framer.pending:
        raise DecodeError(f"expected exactly one message in {len(data)} bytes")
    return decode_message(frames[0])


def spec_id_fields(spec_id: int) -> bytes:
    """The 4-byte fixed field of the *_ROSPEC / *_ACCESSSPEC messages."""
    return _U32.pack(spec_id)
