"""Framer: a malformed header never swallows the whole frames that came before it.

Frames: real Impinj R420 RO_ACCESS_REPORT bodies from the shared golden set (edgexfoundry
device-rfid-llrp-go testdata, Apache-2.0), framed with an LLRP header here.
"""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.llrp.errors import FramingError
from protocols.llrp.frame import Frame, Framer, encode_frame
from protocols.llrp.messages import MessageType, decode_message
from protocols.llrp.reports import tag_reports

# Beside the repository: /work/shared here, and the copy CI lays beside its clone.
FRAMES = Path(__file__).resolve().parents[2].parent / "shared" / "llrp-frames"
REPORTS = sorted(FRAMES.glob("ROAccessReport-*.bytes")) if FRAMES.is_dir() else []
pytestmark = pytest.mark.skipif(not REPORTS, reason="shared LLRP golden frames not present")

BAD_HEADERS = {
    "version 0": struct.pack(">HII", MessageType.RO_ACCESS_REPORT, 20, 9),
    "length below the header": encode_frame(MessageType.RO_ACCESS_REPORT, 9, b"")[:2]
    + struct.pack(">II", 4, 9),
    "length over the limit": encode_frame(MessageType.KEEPALIVE, 9, b"")[:2]
    + struct.pack(">II", 2**31, 9),
}


def real_reports() -> list[bytes]:
    return [
        encode_frame(MessageType.RO_ACCESS_REPORT, i, path.read_bytes())
        for i, path in enumerate(REPORTS, 1)
    ]


@pytest.mark.parametrize("bad", list(BAD_HEADERS), ids=list(BAD_HEADERS))
def test_frames_before_a_bad_header_in_the_same_read_are_delivered(bad: str) -> None:
    good = real_reports()
    rest = BAD_HEADERS[bad] + b"\xde\xad" * 40
    framer = Framer()
    with pytest.raises(FramingError) as caught:
        framer.feed(b"".join(good) + rest)
    delivered = caught.value.frames
    assert [f.raw for f in delivered] == good
    assert sum(len(tag_reports(decode_message(f))) for f in delivered) > 0
    assert framer.pending == rest  # everything from the bad header on, for the dead letter
    with pytest.raises(FramingError, match="already failed"):
        framer.feed(b"more")


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=8))
def test_any_read_boundaries_deliver_every_frame_before_the_bad_header(cuts: list[int]) -> None:
    good = real_reports()
    stream = b"".join(good) + BAD_HEADERS["version 0"] + b"tail"
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    framer = Framer()
    delivered: list[Frame] = []
    failed = False
    for start, end in itertools.pairwise(points):
        try:
            delivered += framer.feed(stream[start:end])
        except FramingError as err:
            delivered += err.frames
            failed = True
            break
    assert failed
    assert [f.raw for f in delivered] == good
    assert framer.pending.startswith(BAD_HEADERS["version 0"])
