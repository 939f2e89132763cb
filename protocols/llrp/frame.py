"""LLRP 1.0.1 message framing: the 10-byte header and a TCP stream framer.

Header (big-endian)::

    | rsvd:3 | ver:3 | message type:10 | message length:32 | message id:32 | body ... |

The length counts the whole message, header included. A TCP read may hold several messages or
a fraction of one; :class:`Framer` buffers bytes and returns whole frames. A header that cannot
be right (a version not accepted, a length below 10 or above the configured limit) raises
:class:`FramingError`: the stream cannot be resynchronised after it, the connection must go.
The whole frames that came before the bad header in the same input travel with the error
(``FramingError.frames``), and :attr:`Framer.pending` holds everything from the bad header on.

>>> raw = encode_frame(62, 7, b"")
>>> raw.hex()
'043e0000000a00000007'
>>> f = Framer()
>>> [fr.message_type for fr in f.feed(raw[:3]) + f.feed(raw[3:] + raw)]
[62, 62]
>>> try:
...     f.feed(raw + bytes.fromhex("003d0000000400000001"))
... except FramingError as err:
...     [fr.message_type for fr in err.frames], f.pending.hex()
([62], '003d0000000400000001')
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from protocols.llrp.errors import FramingError

HEADER = struct.Struct(">HII")
HEADER_SIZE = HEADER.size
LLRP_VERSION = 1
DEFAULT_MAX_LENGTH = 8 * 1024 * 1024
"""Largest message accepted (bytes); a reader's buffered report rarely exceeds a few MB."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One whole LLRP message as it travelled: header fields plus the raw body."""

    version: int
    message_type: int
    message_id: int
    body: bytes

    @property
    def raw(self) -> bytes:
        """The message bytes, header included."""
        return encode_frame(self.message_type, self.message_id, self.body, self.version)


def encode_frame(message_type: int, message_id: int, body: bytes, version: int = 1) -> bytes:
    """Prefix ``body`` with an LLRP header.

    >>> encode_frame(72, 1, b"").hex()
    '04480000000a00000001'
    """
    if not 0 <= message_type < 1024:
        raise ValueError(f"message type {message_type} does not fit in 10 bits")
    if not 0 <= message_id < 2**32:
        raise ValueError(f"message id {message_id} does not fit in 32 bits")
    first = (version & 0x7) << 10 | message_type
    return HEADER.pack(first, HEADER_SIZE + len(body), message_id) + body


def decode_header(
    data: bytes,
    max_length: int = DEFAULT_MAX_LENGTH,
    versions: frozenset[int] | None = frozenset({LLRP_VERSION}),
) -> tuple[int, int, int, int]:
    """Return ``(version, message type, total length, message id)`` of a 10-byte header.

    ``versions``: the protocol versions accepted (None: any, for a reader that answers an
    unsupported version with an error instead of dropping the connection).

    >>> decode_header(bytes.fromhex("043e0000000a00000007"))
    (1, 62, 10, 7)
    >>> decode_header(bytes.fromhex("082e0000000a00000001"), versions=None)  # LLRP 1.1
    (2, 46, 10, 1)
    """
    if len(data) < HEADER_SIZE:
        raise FramingError(f"an LLRP header needs {HEADER_SIZE} bytes, got {len(data)}")
    first, length, message_id = HEADER.unpack_from(data)
    version = (first >> 10) & 0x7
    if versions is not None and version not in versions:
        raise FramingError(f"unsupported LLRP version {version} in header {data[:10].hex()}")
    if length < HEADER_SIZE:
        raise FramingError(f"message length {length} is shorter than the header")
    if length > max_length:
        raise FramingError(f"message length {length} exceeds the limit of {max_length} bytes")
    return version, first & 0x3FF, length, message_id


class Framer:
    """Turns a byte stream into whole frames, whatever the read boundaries.

    After a :class:`FramingError` the framer refuses further input: the caller must drop the
    connection (and may inspect :attr:`pending` to dead-letter what was left).
    """

    def __init__(
        self,
        max_length: int = DEFAULT_MAX_LENGTH,
        versions: frozenset[int] | None = frozenset({LLRP_VERSION}),
    ) -> None:
        self._buffer = bytearray()
        self._max_length = max_length
        self._versions = versions
        self._failed: FramingError | None = None

    @property
    def pending(self) -> bytes:
        """Bytes received but not yet part of a whole frame."""
        return bytes(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data`` and return the frames it completes, oldest first.

        A malformed header raises :class:`FramingError` carrying the frames completed before it.
        """
        if self._failed is not None:
            raise FramingError("stream already failed") from self._failed
        self._buffer += data
        frames: list[Frame] = []
        offset = 0
        buffer = self._buffer
        while len(buffer) - offset >= HEADER_SIZE:
            try:
                version, mtype, length, mid = decode_header(
                    bytes(buffer[offset : offset + HEADER_SIZE]), self._max_length, self._versions
                )
            except FramingError as err:
                del buffer[:offset]
                self._failed = FramingError(str(err), frames)
                raise self._failed from err
            if len(buffer) - offset < length:
                break
            body = bytes(buffer[offset + HEADER_SIZE : offset + length])
            frames.append(Frame(version, mtype, mid, body))
            offset += length
        del buffer[:offset]
        return frames
