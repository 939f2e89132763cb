"""LLRP 1.0.1 codec, written from the EPCglobal specification: frames, parameters, messages.

Pure and I/O-free: the reader simulator and tests use it; the edge source uses it to read tag
reports from the bytes sllurp received.

Modules: :mod:`.frame` (header, stream framer), :mod:`.params` (TV/TLV parameters),
:mod:`.messages` (message types), :mod:`.reports` (tag reports, reader events, LLRPStatus),
:mod:`.specs` (ROSpec, report spec, keepalive spec).

Exception tree (:mod:`.errors`)::

    LlrpError (ValueError)
    ├── FramingError   malformed header: the stream is lost
    └── DecodeError    malformed body: that message is lost, the stream goes on
"""

from protocols.llrp.errors import DecodeError, FramingError, LlrpError
from protocols.llrp.frame import Frame, Framer, encode_frame
from protocols.llrp.messages import Message, MessageType, decode_bytes, decode_message
from protocols.llrp.params import Parameter, decode_params, tlv, tv
from protocols.llrp.reports import LlrpStatus, ReaderEvent, StatusCode, TagReport, tag_reports

__all__ = [
    "DecodeError",
    "Frame",
    "Framer",
    "FramingError",
    "LlrpError",
    "LlrpStatus",
    "Message",
    "MessageType",
    "Parameter",
    "ReaderEvent",
    "StatusCode",
    "TagReport",
    "decode_bytes",
    "decode_message",
    "decode_params",
    "encode_frame",
    "tag_reports",
    "tlv",
    "tv",
]
