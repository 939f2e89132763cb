"""LLRP codec: round trips (hypothesis), stream framing with random chunking, malformed input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.llrp.errors import DecodeError, FramingError
from protocols.llrp.frame import Framer, decode_header, encode_frame
from protocols.llrp.messages import Message, MessageType, decode_bytes, decode_message
from protocols.llrp.params import Parameter, decode_params, tlv, tv
from protocols.llrp.reports import (
    LlrpStatus,
    ReaderEvent,
    TagReport,
    ro_access_report,
    status_of,
    tag_reports,
)
from protocols.llrp.specs import ContentSelector, KeepaliveSpec

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 2**64 - 1)


@st.composite
def tag_report(draw: st.DrawFn) -> TagReport:
    bits = draw(st.sampled_from([96, 96, 128, 198, 64]))
    epc = draw(st.binary(min_size=(bits + 7) // 8, max_size=(bits + 7) // 8)).hex().upper()
    opt = st.none()
    return TagReport(
        epc=epc,
        epc_bits=bits,
        rospec_id=draw(opt | u32),
        spec_index=draw(opt | u16),
        inventory_parameter_spec_id=draw(opt | u16),
        antenna_id=draw(opt | u16),
        peak_rssi=draw(opt | st.integers(-128, 127)),
        channel_index=draw(opt | u16),
        first_seen_utc=draw(opt | u64),
        first_seen_uptime=draw(opt | u64),
        last_seen_utc=draw(opt | u64),
        last_seen_uptime=draw(opt | u64),
        tag_seen_count=draw(opt | u16),
        access_spec_id=draw(opt | u32),
    )


@settings(max_examples=200, deadline=None)
@given(reports=st.lists(tag_report(), max_size=20), message_id=u32)
def test_ro_access_report_round_trips(reports: list[TagReport], message_id: int) -> None:
    wire = ro_access_report(message_id, reports).encode()
    message = decode_bytes(wire)
    assert message.id == message_id
    assert tag_reports(message) == reports
    assert message.encode() == wire


@settings(max_examples=100, deadline=None)
@given(
    utc=st.none() | u64,
    uptime=st.none() | u64,
    attempt=st.none() | st.integers(0, 4),
    close=st.booleans(),
)
def test_reader_event_round_trips(
    utc: int | None, uptime: int | None, attempt: int | None, close: bool
) -> None:
    event = ReaderEvent(utc, uptime, attempt, close)
    assert ReaderEvent.from_message(decode_bytes(event.to_message(3).encode())) == event


@given(code=u16, text=st.text(max_size=40), fe=st.none() | st.tuples(u16, u16))
def test_llrp_status_round_trips(code: int, text: str, fe: tuple[int, int] | None) -> None:
    status = LlrpStatus(code, text, fe)
    msg = Message(MessageType.ERROR_MESSAGE, 1, b"", (status.to_parameter(),))
    assert status_of(decode_bytes(msg.encode())) == status


@given(flags=st.lists(st.booleans(), min_size=10, max_size=10))
def test_content_selector_round_trips(flags: list[bool]) -> None:
    sel = ContentSelector(*flags)
    assert ContentSelector.from_parameter(decode_params(sel.to_parameter().encode())[0]) == sel


def test_keepalive_spec_round_trips() -> None:
    spec = KeepaliveSpec(1, 250)
    assert KeepaliveSpec.from_parameter(decode_params(spec.to_parameter().encode())[0]) == spec


messages = st.builds(
    encode_frame,
    st.sampled_from([61, 62, 63, 72, 11, 1023, 500]),
    u32,
    st.binary(max_size=300),
)


@settings(max_examples=200, deadline=None)
@given(stream=st.lists(messages, min_size=1, max_size=15), data=st.data())
def test_framer_handles_any_chunking(stream: list[bytes], data: st.DataObject) -> None:
    blob = b"".join(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(blob)), max_size=30)))
    framer = Framer()
    frames = []
    previous = 0
    for cut in [*cuts, len(blob)]:
        frames.extend(framer.feed(blob[previous:cut]))
        previous = cut
    assert [f.raw for f in frames] == stream
    assert framer.pending == b""


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (bytes.fromhex("003e0000000a00000001"), "version 0"),
        (bytes.fromhex("083e0000000a00000001"), "version 2"),
        (bytes.fromhex("043e0000000900000001"), "shorter than the header"),
        (bytes.fromhex("043effffffff00000001"), "exceeds the limit"),
    ],
)
def test_malformed_headers_are_refused(header: bytes, reason: str) -> None:
    framer = Framer()
    good = encode_frame(62, 1, b"")
    assert len(framer.feed(good)) == 1
    with pytest.raises(FramingError):
        framer.feed(header + good)
    with pytest.raises(FramingError):
        framer.feed(good)  # the stream is lost after a bad header
    with pytest.raises(FramingError):
        decode_header(header)
    assert reason


def test_header_fields_decode() -> None:
    raw = encode_frame(MessageType.RO_ACCESS_REPORT, 0xDEADBEEF, b"xyz")
    assert decode_header(raw) == (1, 61, 13, 0xDEADBEEF)


def test_unknown_tlv_parameter_is_kept_opaque_and_re_encoded() -> None:
    vendor = struct.pack(">HH", 1000, 9) + b"hello"
    custom = struct.pack(">HHII", 1023, 13, 25882, 56) + b"\x01"
    report = tlv(240, b"", tv(13, bytes(12))).encode()
    body = vendor + custom + report
    params = decode_params(body)
    assert [(p.type, p.opaque) for p in params] == [(1000, True), (1023, True), (240, False)]
    assert params[0].value == b"hello"
    assert b"".join(p.encode() for p in params) == body


def test_unknown_tag_report_children_land_in_extra() -> None:
    impinj = tlv(1023, struct.pack(">II", 25882, 57) + b"\x00\x10")
    param = tlv(240, b"", tv(13, bytes(12)), tv(12, b"\x30\x00"), impinj)
    report = TagReport.from_parameter(decode_params(param.encode())[0])
    assert report.epc == "00" * 12
    assert [p.type for p in report.extra] == [12, 1023]
    assert report.to_parameter().encode() == param.encode()


@pytest.mark.parametrize(
    "body",
    [
        bytes.fromhex("f5"),  # unknown TV type 117
        bytes.fromhex("8d0000"),  # EPC-96 truncated
        bytes.fromhex("00f0"),  # TLV header truncated
        bytes.fromhex("00f0000300"),  # TLV length below 4
        bytes.fromhex("00f000ff"),  # TLV length beyond the body
        bytes.fromhex("0080000600"),  # UTCTimestamp with 2 of 8 bytes
        bytes.fromhex("00f000058d"),  # TagReportData whose child is truncated
    ],
)
def test_malformed_parameters_raise_decode_error(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_message(Framer().feed(encode_frame(61, 1, body))[0])


def test_tag_report_without_epc_is_refused() -> None:
    message = decode_bytes(Message(61, 1, b"", (tlv(240, b"", tv(1, b"\x00\x01")),)).encode())
    with pytest.raises(DecodeError):
        tag_reports(message)


def test_unknown_message_types_keep_their_body() -> None:
    raw = encode_frame(1023, 5, b"\x00\x00\x65\x1a\x15abc")
    message = decode_bytes(raw)
    assert message.opaque
    assert message.name == "CUSTOM_MESSAGE"
    assert message.encode() == raw
    assert decode_bytes(encode_frame(999, 1, b"x")).name == "TYPE_999"


def test_spec_id_messages() -> None:
    message = decode_bytes(encode_frame(MessageType.DELETE_ROSPEC, 4, struct.pack(">I", 7)))
    assert message.spec_id() == 7
    with pytest.raises(DecodeError):
        decode_bytes(encode_frame(MessageType.DELETE_ROSPEC, 4, b"\x00"))
    with pytest.raises(DecodeError):
        Message(MessageType.KEEPALIVE, 1).spec_id()


def test_parameter_helpers() -> None:
    p = tlv(246, b"", tlv(128, bytes(8)), tlv(257))
    assert p.child(257) == Parameter(257)
    assert p.child(256) is None
    assert len(p.all(128)) == 1
    with pytest.raises(ValueError, match="TV parameter"):
        tv(1, b"\x00")
    with pytest.raises(ValueError, match="10 bits"):
        encode_frame(1024, 1, b"")
