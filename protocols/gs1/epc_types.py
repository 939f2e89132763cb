"""Typed EPC values of the GS1 schemes coldtrace handles: SGTIN, SSCC, SGLN and GRAI.

Each is a frozen dataclass that validates itself on construction, so an instance always maps to
exactly one pure-identity URI, one tag URI and one binary encoding (``to_hex()``). Decoding and
URI parsing live in ``protocols.gs1.epc``, which re-exports these classes.

>>> s = Sgtin("0614141", "812345", "6789", filter_value=3)
>>> (s.gtin, s.tag_uri, s.to_hex())
('80614141123458', 'urn:epc:tag:sgtin-96:3.0614141.812345.6789', '3074257BF7194E4000001A85')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from protocols.gs1 import _tds
from protocols.gs1.check_digit import gs1_check_digit
from protocols.gs1.errors import EpcValueError

SgtinScheme = Literal["sgtin-96", "sgtin-198"]

SGTIN96_HEADER = 0x30
SSCC96_HEADER = 0x31
SGLN96_HEADER = 0x32
GRAI96_HEADER = 0x33
SGTIN198_HEADER = 0x36

SERIAL_BITS_96 = 38
SGLN_EXTENSION_BITS = 41
SGTIN198_SERIAL_BITS = 140
SSCC_RESERVED_BITS = 24

# Filter values a value gets when none is known (a pure-identity URI has none): TDS Tables 10-x.
SGTIN_DEFAULT_FILTER = 1  # point-of-sale trade item
SSCC_DEFAULT_FILTER = 2  # full case for transport (6 = unit load, i.e. a pallet)
SGLN_DEFAULT_FILTER = 0  # all others
GRAI_DEFAULT_FILTER = 0  # all others


def _uri(kind: str, scheme: str, *parts: str | int) -> str:
    return f"urn:epc:{kind}:{scheme}:" + ".".join(str(part) for part in parts)


def _text(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise EpcValueError(f"{what} must be text, got {type(value).__name__}")


def _digits(value: str, what: str, length: int | None = None) -> None:
    _text(value, what)
    # Empty is allowed only where a partition gives a field zero digits (SGLN, GRAI).
    if value and not (value.isascii() and value.isdigit()):
        raise EpcValueError(f"{what} must be decimal digits, got {value!r}")
    if length is not None and len(value) != length:
        raise EpcValueError(f"{what} must be {length} digits here, got {value!r}")


def _company_prefix(value: str) -> None:
    _digits(value, "company prefix")
    if not 6 <= len(value) <= 12:
        raise EpcValueError(f"company prefix must be 6 to 12 digits, got {value!r}")


def _filter(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 7:
        raise EpcValueError(f"filter value must be an integer 0-7, got {value!r}")


def fits_numeric(value: str, bits: int) -> bool:
    """True if ``numeric_serial(value, bits)`` would accept ``value``."""
    return (
        isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and (len(value) == 1 or value[0] != "0")
        and int(value) < 1 << bits
    )


def numeric_serial(value: str, bits: int, what: str = "serial") -> int:
    """The integer of a serial that a fixed-width binary field can carry, or ``EpcValueError``.

    TDS requires such serials to be decimal, without leading zeros (``"0"`` itself is fine), and
    below 2^bits, so that decoding gives back exactly the same text.
    """
    _text(value, what)
    if not (value.isascii() and value.isdigit()):
        raise EpcValueError(f"{what} {value!r} must be decimal digits for this scheme")
    if len(value) > 1 and value[0] == "0":
        raise EpcValueError(f"{what} {value!r} must not have leading zeros for this scheme")
    number = int(value)
    if number >= 1 << bits:
        raise EpcValueError(f"{what} {value} must be below 2^{bits} for this scheme")
    return number


def _encode(
    header: int,
    filter_value: int,
    table: tuple[_tds.Partition, ...],
    company_prefix: str,
    reference: str,
) -> _tds.BitWriter:
    partition = _tds.partition_for(table, len(company_prefix))
    row = table[partition]
    writer = _tds.BitWriter()
    writer.write(header, 8)
    writer.write(filter_value, 3)
    writer.write(partition, 3)
    writer.write(int(company_prefix), row.company_prefix_bits)
    writer.write(int(reference or "0"), row.reference_bits)
    return writer


@dataclass(frozen=True, slots=True)
class Sgtin:
    """Serialised GTIN (TDS §6.3.1). ``item_reference`` starts with the indicator digit.

    A pure-identity URI carries no filter value; 1 (point-of-sale trade item) is the default.

    >>> Sgtin("0614141", "712345", "32a/b", scheme="sgtin-198").pure_identity_uri
    'urn:epc:id:sgtin:0614141.712345.32a%2Fb'
    >>> Sgtin("0614141", "712345", "007")
    Traceback (most recent call last):
    ...
    protocols.gs1.errors.EpcValueError: serial '007' must not have leading zeros for this scheme
    """

    company_prefix: str
    item_reference: str
    serial: str
    filter_value: int = SGTIN_DEFAULT_FILTER
    scheme: SgtinScheme = "sgtin-96"

    def __post_init__(self) -> None:
        _company_prefix(self.company_prefix)
        _digits(self.item_reference, "item reference", 13 - len(self.company_prefix))
        _filter(self.filter_value)
        if self.scheme == "sgtin-96":
            numeric_serial(self.serial, SERIAL_BITS_96)
        elif self.scheme == "sgtin-198":
            _text(self.serial, "serial")
            _tds.encode_7bit(self.serial, SGTIN198_SERIAL_BITS)
        else:
            raise EpcValueError(f"unknown SGTIN scheme {self.scheme!r}")

    @property
    def gtin(self) -> str:
        """The 14-digit GTIN: indicator, company prefix, item reference, check digit."""
        body = self.item_reference[0] + self.company_prefix + self.item_reference[1:]
        return body + str(gs1_check_digit(body))

    @property
    def pure_identity_uri(self) -> str:
        serial = _tds.uri_escape(self.serial)
        return _uri("id", "sgtin", self.company_prefix, self.item_reference, serial)

    @property
    def tag_uri(self) -> str:
        serial = _tds.uri_escape(self.serial)
        parts = (self.filter_value, self.company_prefix, self.item_reference, serial)
        return _uri("tag", self.scheme, *parts)

    def to_hex(self) -> str:
        """The EPC binary encoding as upper-case hex, padded to whole 16-bit words."""
        if self.scheme == "sgtin-96":
            writer = _encode(SGTIN96_HEADER, self.filter_value, _tds.SGTIN_PARTITIONS,
                             self.company_prefix, self.item_reference)  # fmt: skip
            writer.write(int(self.serial), SERIAL_BITS_96)
        else:
            writer = _encode(SGTIN198_HEADER, self.filter_value, _tds.SGTIN_PARTITIONS,
                             self.company_prefix, self.item_reference)  # fmt: skip
            writer.write(_tds.encode_7bit(self.serial, SGTIN198_SERIAL_BITS), SGTIN198_SERIAL_BITS)
        return writer.hex()


@dataclass(frozen=True, slots=True)
class Sscc:
    """Serial Shipping Container Code (TDS §6.3.2). ``serial_reference`` starts with the
    extension digit. A pure-identity URI carries no filter; 2 (full case) is the default.

    >>> Sscc("0614141", "1234567890").sscc
    '106141412345678908'
    """

    company_prefix: str
    serial_reference: str
    filter_value: int = SSCC_DEFAULT_FILTER
    scheme: Literal["sscc-96"] = "sscc-96"

    def __post_init__(self) -> None:
        _company_prefix(self.company_prefix)
        _digits(self.serial_reference, "serial reference", 17 - len(self.company_prefix))
        _filter(self.filter_value)
        if self.scheme != "sscc-96":
            raise EpcValueError(f"unknown SSCC scheme {self.scheme!r}")

    @property
    def sscc(self) -> str:
        """The 18-digit SSCC: extension, company prefix, serial reference, check digit."""
        body = self.serial_reference[0] + self.company_prefix + self.serial_reference[1:]
        return body + str(gs1_check_digit(body))

    @property
    def pure_identity_uri(self) -> str:
        return _uri("id", "sscc", self.company_prefix, self.serial_reference)

    @property
    def tag_uri(self) -> str:
        return _uri("tag", "sscc-96", self.filter_value, self.company_prefix, self.serial_reference)

    def to_hex(self) -> str:
        """The SSCC-96 encoding as upper-case hex (the last 24 bits are reserved zeros)."""
        writer = _encode(SSCC96_HEADER, self.filter_value, _tds.SSCC_PARTITIONS,
                         self.company_prefix, self.serial_reference)  # fmt: skip
        writer.write(0, SSCC_RESERVED_BITS)
        return writer.hex()


@dataclass(frozen=True, slots=True)
class Sgln:
    """GLN with optional extension (TDS §6.3.3); extension ``"0"`` means none.

    >>> Sgln("0614141", "12345", "400").gln
    '0614141123452'
    """

    company_prefix: str
    location_reference: str
    extension: str
    filter_value: int = SGLN_DEFAULT_FILTER
    scheme: Literal["sgln-96"] = "sgln-96"

    def __post_init__(self) -> None:
        _company_prefix(self.company_prefix)
        _digits(self.location_reference, "location reference", 12 - len(self.company_prefix))
        _filter(self.filter_value)
        if self.scheme != "sgln-96":
            raise EpcValueError(f"unknown SGLN scheme {self.scheme!r}")
        numeric_serial(self.extension, SGLN_EXTENSION_BITS, "extension")

    @property
    def gln(self) -> str:
        """The 13-digit GLN (the extension is not part of it)."""
        body = self.company_prefix + self.location_reference
        return body + str(gs1_check_digit(body))

    @property
    def pure_identity_uri(self) -> str:
        return _uri("id", "sgln", self.company_prefix, self.location_reference, self.extension)

    @property
    def tag_uri(self) -> str:
        parts = (self.filter_value, self.company_prefix, self.location_reference, self.extension)
        return _uri("tag", "sgln-96", *parts)

    def to_hex(self) -> str:
        """The SGLN-96 encoding as upper-case hex."""
        writer = _encode(SGLN96_HEADER, self.filter_value, _tds.SGLN_PARTITIONS,
                         self.company_prefix, self.location_reference)  # fmt: skip
        writer.write(int(self.extension), SGLN_EXTENSION_BITS)
        return writer.hex()


@dataclass(frozen=True, slots=True)
class Grai:
    """Global Returnable Asset Identifier (TDS §6.3.4), e.g. a reusable insulated container.

    >>> Grai("0614141", "12345", "400").grai
    '00614141123452400'
    """

    company_prefix: str
    asset_type: str
    serial: str
    filter_value: int = GRAI_DEFAULT_FILTER
    scheme: Literal["grai-96"] = "grai-96"

    def __post_init__(self) -> None:
        _company_prefix(self.company_prefix)
        _digits(self.asset_type, "asset type", 12 - len(self.company_prefix))
        _filter(self.filter_value)
        if self.scheme != "grai-96":
            raise EpcValueError(f"unknown GRAI scheme {self.scheme!r}")
        numeric_serial(self.serial, SERIAL_BITS_96)

    @property
    def grai(self) -> str:
        """The GRAI element string value: ``0``, company prefix, asset type, check, serial."""
        body = "0" + self.company_prefix + self.asset_type
        return body + str(gs1_check_digit(body)) + self.serial

    @property
    def pure_identity_uri(self) -> str:
        return _uri("id", "grai", self.company_prefix, self.asset_type, self.serial)

    @property
    def tag_uri(self) -> str:
        parts = (self.filter_value, self.company_prefix, self.asset_type, self.serial)
        return _uri("tag", "grai-96", *parts)

    def to_hex(self) -> str:
        """The GRAI-96 encoding as upper-case hex."""
        writer = _encode(GRAI96_HEADER, self.filter_value, _tds.GRAI_PARTITIONS,
                         self.company_prefix, self.asset_type)  # fmt: skip
        writer.write(int(self.serial), SERIAL_BITS_96)
        return writer.hex()


Epc = Sgtin | Sscc | Sgln | Grai
"""Any EPC value this package decodes."""
