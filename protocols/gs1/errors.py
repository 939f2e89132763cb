"""The exceptions of ``protocols.gs1``, all in one small tree.

Every error is a ``ValueError``, so callers that only want "bad input" can catch that; callers
that care about the kind catch a subclass. Each carries a message that names the offending part.

::

    ValueError
     └── Gs1Error                      anything wrong with a GS1 key, EPC or element string
          ├── Gs1KeyError              a GS1 key is not digits / has the wrong length
          ├── EpcError                 an EPC (binary or URI) cannot be decoded or encoded
          │    ├── EpcSyntaxError      text that is not hex, or not an EPC URI of the right shape
          │    ├── UnsupportedEpcError a header or URI scheme this codec does not handle
          │    ├── EpcDecodeError      bits that break the Tag Data Standard (partition 7, a
          │    │                       field ≥ 10^digits, non-zero padding, too few bits, ...)
          │    └── EpcValueError       a value that cannot be represented (serial too large or
          │                            with leading zeros, wrong check digit, bad filter, ...)
          └── ElementStringError       a GS1 element string or Digital Link cannot be used
               ├── ElementStringSyntaxError  structure: brackets, separators, URI shape
               ├── UnsupportedAiError         an AI this module does not know
               ├── AiValueError               a value breaks its AI's format (length,
               │                              characters, check digit, date)
               └── AiCombinationError         duplicates, a missing companion AI, exclusions

>>> issubclass(EpcDecodeError, ValueError)
True
"""

from __future__ import annotations


class Gs1Error(ValueError):
    """Root of every error raised by ``protocols.gs1``."""


class Gs1KeyError(Gs1Error):
    """A GS1 key (GTIN, SSCC, GLN, ...) is not a digit string of an accepted length."""


class EpcError(Gs1Error):
    """An EPC, in binary (hex) or URI form, cannot be decoded or encoded."""


class EpcSyntaxError(EpcError):
    """The text is not hex, or not an EPC URI of the expected shape."""


class UnsupportedEpcError(EpcError):
    """A header or scheme that is valid in TDS, or unknown, but not handled here.

    ``header`` is the 8-bit EPC header when the error comes from binary decoding, else ``None``.
    """

    def __init__(self, message: str, header: int | None = None) -> None:
        super().__init__(message)
        self.header = header


class EpcDecodeError(EpcError):
    """The bits break a rule of the Tag Data Standard's decoding procedure."""


class EpcValueError(EpcError):
    """A field value that the EPC scheme cannot represent."""


class ElementStringError(Gs1Error):
    """A GS1 element string (HRI or barcode form) or Digital Link URI cannot be used."""


class ElementStringSyntaxError(ElementStringError):
    """Structure is wrong: brackets, separators, truncated data, URI shape."""


class UnsupportedAiError(ElementStringError):
    """An Application Identifier this module does not know (``ai`` holds its digits or text)."""

    def __init__(self, message: str, ai: str) -> None:
        super().__init__(message)
        self.ai = ai


class AiValueError(ElementStringError):
    """A value breaks its AI's format: length, characters, check digit or date."""

    def __init__(self, message: str, ai: str) -> None:
        super().__init__(message)
        self.ai = ai


class AiCombinationError(ElementStringError):
    """AIs that may not appear together, a repeated AI, or a missing companion AI."""
