"""Building blocks of the EPC Tag Data Standard binary encodings (TDS 2.x §14).

Internal to ``protocols.gs1``: bit fields, partition tables, the 7-bit string method and the
escaping of GS1 AI character set 82 in URIs. Public API lives in ``protocols.gs1.epc``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from protocols.gs1.errors import EpcDecodeError, EpcSyntaxError, EpcValueError


@dataclass(frozen=True, slots=True)
class Partition:
    """One row of a TDS partition table: how many bits and digits each of two fields takes."""

    company_prefix_bits: int
    company_prefix_digits: int
    reference_bits: int
    reference_digits: int


def _table(*rows: tuple[int, int, int, int]) -> tuple[Partition, ...]:
    return tuple(Partition(*row) for row in rows)


# TDS §14.2, partition value = index. The reference field is the item reference with its
# indicator digit (SGTIN), the serial reference with its extension digit (SSCC), the location
# reference (SGLN) or the asset type (GRAI).
SGTIN_PARTITIONS = _table(
    (40, 12, 4, 1), (37, 11, 7, 2), (34, 10, 10, 3), (30, 9, 14, 4),
    (27, 8, 17, 5), (24, 7, 20, 6), (20, 6, 24, 7),
)  # fmt: skip
SSCC_PARTITIONS = _table(
    (40, 12, 18, 5), (37, 11, 21, 6), (34, 10, 24, 7), (30, 9, 28, 8),
    (27, 8, 31, 9), (24, 7, 34, 10), (20, 6, 38, 11),
)  # fmt: skip
SGLN_PARTITIONS = _table(
    (40, 12, 1, 0), (37, 11, 4, 1), (34, 10, 7, 2), (30, 9, 11, 3),
    (27, 8, 14, 4), (24, 7, 17, 5), (20, 6, 21, 6),
)  # fmt: skip
GRAI_PARTITIONS = _table(
    (40, 12, 4, 0), (37, 11, 7, 1), (34, 10, 10, 2), (30, 9, 14, 3),
    (27, 8, 17, 4), (24, 7, 20, 5), (20, 6, 24, 6),
)  # fmt: skip


def partition_for(table: tuple[Partition, ...], company_prefix_length: int) -> int:
    """Partition value whose company prefix has ``company_prefix_length`` digits."""
    for value, row in enumerate(table):
        if row.company_prefix_digits == company_prefix_length:
            return value
    raise EpcValueError(f"company prefix must be 6 to 12 digits, got {company_prefix_length}")


class BitReader:
    """Reads unsigned big-endian fields from an EPC held as one integer of ``length`` bits."""

    def __init__(self, value: int, length: int) -> None:
        self._value = value
        self._length = length
        self._position = 0

    @property
    def remaining(self) -> int:
        return self._length - self._position

    def read(self, width: int) -> int:
        if width > self.remaining:
            raise EpcDecodeError(f"EPC is too short: {width} more bits needed at {self._position}")
        self._position += width
        return (self._value >> (self._length - self._position)) & ((1 << width) - 1)


class BitWriter:
    """Collects fields most significant first; ``hex()`` pads to whole 16-bit words (Gen2)."""

    def __init__(self) -> None:
        self._value = 0
        self._length = 0

    def write(self, value: int, width: int) -> None:
        if value < 0 or value >= 1 << width:
            raise EpcValueError(f"value {value} does not fit in {width} bits")
        self._value = (self._value << width) | value
        self._length += width

    def hex(self) -> str:
        padding = -self._length % 16
        return f"{self._value << padding:0{(self._length + padding) // 4}X}"


def decode_decimal(value: int, digits: int, what: str) -> str:
    """TDS §14.3.3: a partitioned integer field becomes exactly ``digits`` decimal digits."""
    if value >= 10**digits:
        raise EpcDecodeError(f"{what} field holds {value}, more than {digits} digits")
    return f"{value:0{digits}d}" if digits else ""


# GS1 AI encodable character set 82 (GS1 General Specifications Figure 7.11-1, TDS Table A-1).
CSET82 = frozenset(
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
# TDS Table A-1: characters of CSET 82 that must be %-escaped in an EPC URI.
_URI_ESCAPED = {'"': "%22", "%": "%25", "&": "%26", "/": "%2F", "<": "%3C", ">": "%3E", "?": "%3F"}
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def encode_7bit(text: str, width: int) -> int:
    """TDS §14.3.6 String encoding: 7-bit ASCII per character, zero-padded to ``width`` bits."""
    if not text or len(text) * 7 > width:
        raise EpcValueError(f"serial must be 1 to {width // 7} characters, got {len(text)}")
    bad = sorted({char for char in text if char not in CSET82})
    if bad:
        raise EpcValueError(f"serial has characters outside GS1 character set 82: {bad}")
    value = 0
    for char in text:
        value = (value << 7) | ord(char)
    return value << (width - 7 * len(text))


def decode_7bit(value: int, width: int) -> str:
    """TDS §14.4.6 String decoding: stop at the first all-zero 7-bit segment; the rest is zero."""
    chars: list[str] = []
    for shift in range(width - 7, -1, -7):
        code = (value >> shift) & 0x7F
        if code == 0:
            if value & ((1 << shift) - 1):
                raise EpcDecodeError("serial has non-zero bits after its terminating zero")
            break
        char = chr(code)
        if char not in CSET82:
            raise EpcDecodeError(f"serial has character {code:#04x} outside GS1 set 82")
        chars.append(char)
    if not chars:
        raise EpcDecodeError("serial is empty")
    return "".join(chars)


def uri_escape(text: str) -> str:
    """Escape the characters TDS Table A-1 requires in a URI component."""
    return "".join(_URI_ESCAPED.get(char, char) for char in text)


def uri_unescape(text: str) -> str:
    """Undo ``%HH`` escapes; refuse raw characters that must be escaped, and non-CSET-82 text."""
    for char in text:
        if char in _URI_ESCAPED and char != "%":
            raise EpcSyntaxError(f"character {char!r} must be %-escaped in an EPC URI")
    decoded = _ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text)
    if "%" in _ESCAPE.sub("", text):
        raise EpcSyntaxError(f"malformed %-escape in {text!r}")
    bad = sorted({char for char in decoded if char not in CSET82})
    if bad:
        raise EpcSyntaxError(f"characters outside GS1 character set 82: {bad}")
    return decoded
