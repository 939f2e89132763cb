"""Errors of the LLRP codec.

Exception tree::

    LlrpError (ValueError)
    ├── FramingError   a header that cannot be right: the byte stream is lost, drop the connection
    └── DecodeError    one message's body is malformed: skip that message, keep the stream
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from protocols.llrp.frame import Frame


class LlrpError(ValueError):
    """LLRP bytes could not be understood."""


class FramingError(LlrpError):
    """A malformed LLRP header; the stream cannot be resynchronised after it.

    ``frames`` are the whole frames that arrived before the bad header in the same input: they
    are good data and must be delivered before the connection goes.
    """

    def __init__(self, message: str, frames: Sequence[Frame] = ()) -> None:
        super().__init__(message)
        self.frames: tuple[Frame, ...] = tuple(frames)


class DecodeError(LlrpError):
    """A message or parameter body is malformed (truncated, bad length, unknown TV type)."""
