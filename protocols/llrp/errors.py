"""Errors of the LLRP codec.

Exception tree::

    LlrpError (ValueError)
    ├── FramingError   a header that cannot be right: the byte stream is lost, drop the connection
    └── DecodeError    one message's body is malformed: skip that message, keep the stream
"""

from __future__ import annotations


class LlrpError(ValueError):
    """LLRP bytes could not be understood."""


class FramingError(LlrpError):
    """A malformed LLRP header; the stream cannot be resynchronised after it."""


class DecodeError(LlrpError):
    """A message or parameter body is malformed (truncated, bad length, unknown TV type)."""
