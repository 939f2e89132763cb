"""EPC Tag Data Standard (TDS 2.x) codec: binary (hex) and URI forms of GS1 EPCs.

Decodes and encodes SGTIN-96, SGTIN-198, SSCC-96, SGLN-96 and GRAI-96, and parses
pure-identity URIs (``urn:epc:id:sgtin:0614141.812345.6789``) and tag URIs
(``urn:epc:tag:sgtin-96:3.0614141.812345.6789``). Everything is pure: text in, frozen values out.

Errors (all ``ValueError``; see ``protocols.gs1.errors`` for the whole package tree)::

    EpcError
     ├── EpcSyntaxError       not hex / not an EPC URI of the right shape
     ├── UnsupportedEpcError  header or scheme not handled (``.header`` for binary input)
     ├── EpcDecodeError       bits break TDS: partition 7, field ≥ 10^digits, non-zero
     │                        padding or reserved bits, bad 7-bit character, too few bits
     └── EpcValueError        a value the scheme cannot carry (serial range or leading
                              zeros, wrong GTIN/SSCC check digit, filter outside 0-7)

>>> epc = decode_epc("3074257BF7194E4000001A85")
>>> (epc.gtin, epc.serial, epc.tag_uri)
('80614141123458', '6789', 'urn:epc:tag:sgtin-96:3.0614141.812345.6789')
>>> encode_sgtin96("80614141123458", 6789, company_prefix_length=7, filter_value=3)
'3074257BF7194E4000001A85'
"""

from __future__ import annotations

import re
from collections.abc import Callable

from protocols.gs1 import _tds
from protocols.gs1.check_digit import require_gs1_key
from protocols.gs1.epc_types import (
    GRAI96_HEADER,
    SERIAL_BITS_96,
    SGLN96_HEADER,
    SGLN_EXTENSION_BITS,
    SGTIN96_HEADER,
    SGTIN198_HEADER,
    SGTIN198_SERIAL_BITS,
    SSCC96_HEADER,
    SSCC_RESERVED_BITS,
    Epc,
    Grai,
    Sgln,
    Sgtin,
    SgtinScheme,
    Sscc,
    fits_numeric,
)
from protocols.gs1.epc_uri import parse_epc_uri
from protocols.gs1.errors import (
    EpcDecodeError,
    EpcError,
    EpcSyntaxError,
    EpcValueError,
    Gs1KeyError,
    UnsupportedEpcError,
)

__all__ = [
    "Epc",
    "EpcDecodeError",
    "EpcError",
    "EpcSyntaxError",
    "EpcValueError",
    "Grai",
    "Sgln",
    "Sgtin",
    "Sscc",
    "UnsupportedEpcError",
    "decode_epc",
    "encode_sgtin96",
    "encode_sgtin198",
    "encode_sscc96",
    "parse_epc_uri",
]

_HEX = re.compile(r"[0-9A-Fa-f]+")
MAX_EPC_HEX = 124
"""A Gen2 EPC bank holds at most 496 bits of EPC; longer input is refused before any work."""

# Headers defined by TDS that this codec does not decode, named so the error says what it was.
_KNOWN_UNSUPPORTED = {
    0x00: "unprogrammed tag",
    0x2C: "GDTI-96",
    0x2D: "GSRN-96",
    0x2E: "GSRNP-96",
    0x2F: "USDOD-96",
    0x34: "GIAI-96",
    0x35: "GID-96",
    0x37: "GRAI-170",
    0x38: "GIAI-202",
    0x39: "SGLN-195",
    0x3A: "GDTI-113",
    0x3B: "ADI-var",
    0x3C: "CPI-96",
    0x3D: "CPI-var",
    0x3E: "GDTI-174",
    0x3F: "SGCN-96",
    0x40: "ITIP-110",
    0x41: "ITIP-212",
    0xE2: "DSGTIN+",
    0xF7: "SGTIN+",
    0xF9: "SSCC+",
}


def _partitioned(reader: _tds.BitReader, table: tuple[_tds.Partition, ...]) -> tuple[int, str, str]:
    filter_value = reader.read(3)
    partition = reader.read(3)
    if partition >= len(table):
        raise EpcDecodeError(f"partition value {partition} is not in the partition table")
    row = table[partition]
    prefix = _tds.decode_decimal(
        reader.read(row.company_prefix_bits), row.company_prefix_digits, "company prefix"
    )
    reference = _tds.decode_decimal(
        reader.read(row.reference_bits), row.reference_digits, "reference"
    )
    return filter_value, prefix, reference


def _sgtin96(reader: _tds.BitReader) -> Sgtin:
    filter_value, prefix, reference = _partitioned(reader, _tds.SGTIN_PARTITIONS)
    serial = str(reader.read(SERIAL_BITS_96))
    return Sgtin(prefix, reference, serial, filter_value, "sgtin-96")


def _sgtin198(reader: _tds.BitReader) -> Sgtin:
    filter_value, prefix, reference = _partitioned(reader, _tds.SGTIN_PARTITIONS)
    serial = _tds.decode_7bit(reader.read(SGTIN198_SERIAL_BITS), SGTIN198_SERIAL_BITS)
    return Sgtin(prefix, reference, serial, filter_value, "sgtin-198")


def _sscc96(reader: _tds.BitReader) -> Sscc:
    filter_value, prefix, reference = _partitioned(reader, _tds.SSCC_PARTITIONS)
    if reader.read(SSCC_RESERVED_BITS):
        raise EpcDecodeError("SSCC-96 reserved bits are not zero")
    return Sscc(prefix, reference, filter_value)


def _sgln96(reader: _tds.BitReader) -> Sgln:
    filter_value, prefix, reference = _partitioned(reader, _tds.SGLN_PARTITIONS)
    return Sgln(prefix, reference, str(reader.read(SGLN_EXTENSION_BITS)), filter_value)


def _grai96(reader: _tds.BitReader) -> Grai:
    filter_value, prefix, reference = _partitioned(reader, _tds.GRAI_PARTITIONS)
    return Grai(prefix, reference, str(reader.read(SERIAL_BITS_96)), filter_value)


# header -> (total bits of the encoding, decoder of the fields after the header)
_DECODERS: dict[int, tuple[int, Callable[[_tds.BitReader], Epc]]] = {
    SGTIN96_HEADER: (96, _sgtin96),
    SSCC96_HEADER: (96, _sscc96),
    SGLN96_HEADER: (96, _sgln96),
    GRAI96_HEADER: (96, _grai96),
    SGTIN198_HEADER: (198, _sgtin198),
}


def decode_epc(epc_hex: str) -> Epc:
    """Decode an EPC from its hex form (as read from a tag's EPC bank, without PC bits).

    Bits beyond the scheme's length (padding to a 16-bit word, or a longer EPC bank) must be
    zero. Raises an ``EpcError`` subclass for anything it cannot decode, and nothing else.

    >>> decode_epc("3174257BF4499602D2000000").sscc
    '106141412345678908'
    >>> decode_epc("3474257BF400000000000001")
    Traceback (most recent call last):
    ...
    protocols.gs1.errors.UnsupportedEpcError: EPC header 0x34 (GIAI-96) is not supported
    >>> decode_epc("30 74")
    Traceback (most recent call last):
    ...
    protocols.gs1.errors.EpcSyntaxError: EPC must be hex digits, got '30 74'
    """
    if not isinstance(epc_hex, str) or not _HEX.fullmatch(epc_hex) or len(epc_hex) < 2:
        raise EpcSyntaxError(f"EPC must be hex digits, got {epc_hex!r:.80}")
    if len(epc_hex) > MAX_EPC_HEX:
        raise EpcSyntaxError(f"EPC is {len(epc_hex)} hex digits; Gen2 allows at most {MAX_EPC_HEX}")
    length = len(epc_hex) * 4
    reader = _tds.BitReader(int(epc_hex, 16), length)
    header = reader.read(8)
    if header not in _DECODERS:
        name = _KNOWN_UNSUPPORTED.get(header, "unknown")
        raise UnsupportedEpcError(f"EPC header {header:#04x} ({name}) is not supported", header)
    bits, decoder = _DECODERS[header]
    if length < bits:
        raise EpcDecodeError(f"EPC with header {header:#04x} needs {bits} bits, got {length}")
    epc = decoder(reader)
    if reader.read(reader.remaining):
        raise EpcDecodeError(f"bits after the {bits}-bit EPC are not zero")
    return epc


def _split_gtin(gtin: str, company_prefix_length: int) -> tuple[str, str]:
    """(company prefix, indicator + item reference) of a GTIN; GTIN-8/12/13 are zero-padded."""
    if len(gtin) in (8, 12, 13):
        gtin = gtin.zfill(14)
    try:
        require_gs1_key(gtin, 14, "GTIN")
    except Gs1KeyError as err:
        raise EpcValueError(str(err)) from err
    if not 6 <= company_prefix_length <= 12:
        raise EpcValueError(f"company prefix must be 6 to 12 digits, got {company_prefix_length}")
    prefix = gtin[1 : 1 + company_prefix_length]
    return prefix, gtin[0] + gtin[1 + company_prefix_length : 13]


def sgtin_from_gtin(
    gtin: str,
    serial: str,
    company_prefix_length: int,
    filter_value: int = 1,
    scheme: SgtinScheme | None = None,
) -> Sgtin:
    """An ``Sgtin`` from a GTIN and serial; without ``scheme``, SGTIN-96 when the serial fits.

    >>> sgtin_from_gtin("80614141123458", "6789", 7).scheme
    'sgtin-96'
    >>> sgtin_from_gtin("80614141123458", "A-6789", 7).tag_uri
    'urn:epc:tag:sgtin-198:1.0614141.812345.A-6789'
    """
    prefix, reference = _split_gtin(gtin, company_prefix_length)
    if scheme is None:
        scheme = "sgtin-96" if fits_numeric(serial, SERIAL_BITS_96) else "sgtin-198"
    return Sgtin(prefix, reference, serial, filter_value, scheme)


def encode_sgtin96(
    gtin: str, serial: int, company_prefix_length: int, filter_value: int = 1
) -> str:
    """SGTIN-96 hex (upper case) for a GTIN (8, 12, 13 or 14 digits) and a numeric serial.

    >>> encode_sgtin96("80614141123458", 2**38, 7)
    Traceback (most recent call last):
    ...
    protocols.gs1.errors.EpcValueError: serial 274877906944 must be below 2^38 for this scheme
    """
    if isinstance(serial, bool) or not isinstance(serial, int) or serial < 0:
        raise EpcValueError(f"SGTIN-96 serial must be a non-negative integer, got {serial!r}")
    prefix, reference = _split_gtin(gtin, company_prefix_length)
    return Sgtin(prefix, reference, str(serial), filter_value, "sgtin-96").to_hex()


def encode_sgtin198(
    gtin: str, serial: str, company_prefix_length: int, filter_value: int = 1
) -> str:
    """SGTIN-198 hex (upper case, 52 digits: 198 bits padded to 208) for an alphanumeric serial.

    >>> encode_sgtin198("80614141123458", "32a/b", 7, filter_value=3)[:24]
    '3674257BF7194E59B2C2BF10'
    """
    prefix, reference = _split_gtin(gtin, company_prefix_length)
    return Sgtin(prefix, reference, serial, filter_value, "sgtin-198").to_hex()


def sscc_from_digits(sscc: str, company_prefix_length: int, filter_value: int = 2) -> Sscc:
    """An ``Sscc`` from the 18-digit SSCC (the check digit is verified, then dropped).

    >>> sscc_from_digits("106141412345678908", 7).pure_identity_uri
    'urn:epc:id:sscc:0614141.1234567890'
    """
    try:
        require_gs1_key(sscc, 18, "SSCC")
    except Gs1KeyError as err:
        raise EpcValueError(str(err)) from err
    if not 6 <= company_prefix_length <= 12:
        raise EpcValueError(f"company prefix must be 6 to 12 digits, got {company_prefix_length}")
    prefix = sscc[1 : 1 + company_prefix_length]
    return Sscc(prefix, sscc[0] + sscc[1 + company_prefix_length : 17], filter_value)


def encode_sscc96(sscc: str, company_prefix_length: int, filter_value: int = 2) -> str:
    """SSCC-96 hex (upper case) for an 18-digit SSCC.

    >>> encode_sscc96("106141412345678908", 7, filter_value=3)
    '3174257BF4499602D2000000'
    """
    return sscc_from_digits(sscc, company_prefix_length, filter_value).to_hex()
