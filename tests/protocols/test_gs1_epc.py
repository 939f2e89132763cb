"""EPC Tag Data Standard codec: golden vectors from TDS 2.x, malformed inputs, round trips."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.gs1.epc import (
    EpcDecodeError,
    EpcError,
    EpcSyntaxError,
    EpcValueError,
    Grai,
    Sgln,
    Sgtin,
    Sscc,
    UnsupportedEpcError,
    decode_epc,
    encode_sgtin96,
    encode_sgtin198,
    encode_sscc96,
    parse_epc_uri,
    sgtin_from_gtin,
    sscc_from_digits,
)


def test_tds_appendix_e_sgtin96_example() -> None:
    # TDS 2.x Appendix E "Example of an encoding/decoding": SGTIN-96, GTIN 80614141123458,
    # serial 6789, company prefix 0614141, filter 3.
    epc = decode_epc("3074257BF7194E4000001A85")
    assert epc == Sgtin("0614141", "812345", "6789", 3, "sgtin-96")
    assert isinstance(epc, Sgtin)
    assert epc.gtin == "80614141123458"
    assert epc.pure_identity_uri == "urn:epc:id:sgtin:0614141.812345.6789"
    assert epc.tag_uri == "urn:epc:tag:sgtin-96:3.0614141.812345.6789"
    assert encode_sgtin96("80614141123458", 6789, 7, filter_value=3) == "3074257BF7194E4000001A85"
    assert parse_epc_uri(epc.tag_uri).to_hex() == "3074257BF7194E4000001A85"


def test_lower_case_hex_decodes_the_same() -> None:
    assert decode_epc("3074257bf7194e4000001a85") == decode_epc("3074257BF7194E4000001A85")


def test_tds_6_3_1_sgtin_examples() -> None:
    # TDS §6.3.1 pure-identity examples; the second needs SGTIN-198 ('/' escaped as %2F).
    plain = parse_epc_uri("urn:epc:id:sgtin:0614141.112345.400")
    assert isinstance(plain, Sgtin)
    assert (plain.gtin, plain.serial, plain.scheme) == ("10614141123459", "400", "sgtin-96")
    alpha = parse_epc_uri("urn:epc:id:sgtin:0614141.712345.32a%2Fb")
    assert isinstance(alpha, Sgtin)
    assert (alpha.serial, alpha.scheme) == ("32a/b", "sgtin-198")
    assert alpha.pure_identity_uri == "urn:epc:id:sgtin:0614141.712345.32a%2Fb"


def test_sgtin198_encoding_follows_the_7bit_string_method() -> None:
    # TDS §14.5.1.2 coding table + §14.3.6: '3' '2' 'a' '/' 'b' = 0x33 0x32 0x61 0x2F 0x62 as
    # 7-bit segments after the 8+3+3+44 header bits, zero-padded to 140 bits, then to 208.
    hex_epc = encode_sgtin198("80614141123458", "32a/b", 7, filter_value=3)
    assert hex_epc == "3674257BF7194E59B2C2BF10" + "0" * 28
    value = int(hex_epc, 16) >> 10  # drop the 10 bits padding 198 to 208
    serial_bits = value & ((1 << 140) - 1)
    codes = [(serial_bits >> (133 - 7 * i)) & 0x7F for i in range(5)]
    assert codes == [0x33, 0x32, 0x61, 0x2F, 0x62]
    decoded = decode_epc(hex_epc)
    assert decoded.tag_uri == "urn:epc:tag:sgtin-198:3.0614141.812345.32a%2Fb"


def test_tds_6_3_2_sscc_example() -> None:
    # TDS §6.3.2: urn:epc:id:sscc:0614141.1234567890 is SSCC 106141412345678908. The SSCC-96
    # hex follows the §14.5.2 coding table (header 0x31, 24 reserved zero bits).
    sscc = parse_epc_uri("urn:epc:id:sscc:0614141.1234567890")
    assert isinstance(sscc, Sscc)
    assert sscc.sscc == "106141412345678908"
    assert sscc.filter_value == 2
    assert encode_sscc96("106141412345678908", 7, filter_value=3) == "3174257BF4499602D2000000"
    decoded = decode_epc("3174257BF4499602D2000000")
    assert decoded == Sscc("0614141", "1234567890", 3)
    assert decoded.tag_uri == "urn:epc:tag:sscc-96:3.0614141.1234567890"


def test_tds_6_3_3_and_6_3_4_sgln_and_grai_examples() -> None:
    sgln = parse_epc_uri("urn:epc:tag:sgln-96:3.0614141.12345.400")
    assert isinstance(sgln, Sgln)
    assert (sgln.gln, sgln.extension) == ("0614141123452", "400")
    assert decode_epc(sgln.to_hex()) == sgln
    assert sgln.pure_identity_uri == "urn:epc:id:sgln:0614141.12345.400"
    grai = parse_epc_uri("urn:epc:tag:grai-96:3.0614141.12345.400")
    assert isinstance(grai, Grai)
    assert grai.grai == "00614141123452400"
    assert decode_epc(grai.to_hex()) == grai
    assert grai.pure_identity_uri == "urn:epc:id:grai:0614141.12345.400"


def test_twelve_digit_company_prefix_gives_empty_references() -> None:
    sgln = Sgln("061414112345", "", "0")
    assert sgln.pure_identity_uri == "urn:epc:id:sgln:061414112345..0"
    assert parse_epc_uri(sgln.pure_identity_uri) == sgln
    assert decode_epc(sgln.to_hex()) == sgln
    grai = Grai("061414112345", "", "7", filter_value=1)
    assert decode_epc(grai.to_hex()) == grai


def test_pure_identity_uses_given_filter_and_chooses_scheme() -> None:
    epc = parse_epc_uri("urn:epc:id:sgtin:0614141.812345.6789", filter_value=2)
    assert isinstance(epc, Sgtin)
    assert epc.tag_uri == "urn:epc:tag:sgtin-96:2.0614141.812345.6789"
    # A serial SGTIN-96 cannot carry goes to SGTIN-198: leading zero, letters, ≥ 2^38.
    for serial in ("0123", "A1", str(2**38)):
        chosen = parse_epc_uri(f"urn:epc:id:sgtin:0614141.812345.{serial}")
        assert isinstance(chosen, Sgtin)
        assert chosen.scheme == "sgtin-198"
    assert sgtin_from_gtin("80614141123458", str(2**38 - 1), 7).scheme == "sgtin-96"


def test_gtin_8_12_13_are_zero_padded_when_encoding() -> None:
    hex_epc = encode_sgtin96("614141000036", 5, 6)  # GTIN-12, company prefix 614141 → 0614141
    epc = decode_epc(hex_epc)
    assert isinstance(epc, Sgtin)
    assert epc.gtin == "00614141000036"


def test_all_tds_characters_round_trip_through_uri_and_binary() -> None:
    serial = "!\"%&'()*+,-./:;<=>?_zZ"[:20]
    epc = Sgtin("0614141", "812345", serial, 0, "sgtin-198")
    assert parse_epc_uri(epc.tag_uri) == epc
    assert decode_epc(epc.to_hex()) == epc
    assert epc.pure_identity_uri.endswith(".!%22%25%26'()*+,-.%2F:;%3C=%3E%3F_")


def _bits(*fields: tuple[int, int], total: int = 96) -> str:
    value, used = 0, 0
    for field, width in fields:
        value, used = (value << width) | field, used + width
    value <<= total - used
    return f"{value:0{total // 4}X}"


MALFORMED_HEX: list[tuple[Any, type[EpcError]]] = [
    ("", EpcSyntaxError),
    ("3", EpcSyntaxError),
    ("ZZ", EpcSyntaxError),
    ("30 74257BF7194E4000001A85", EpcSyntaxError),
    ("0x3074257BF7194E4000001A85", EpcSyntaxError),
    ("3074257BF7194E4000001A85\n", EpcSyntaxError),
    (None, EpcSyntaxError),
    (0x3074, EpcSyntaxError),
    ("3074257BF7194E4000001A", EpcDecodeError),  # 88 bits
    ("30", EpcDecodeError),
    ("3074257BF7194E4000001A850001", EpcDecodeError),  # non-zero bits after the EPC
    ("3174257BF4499602D2000001", EpcDecodeError),  # SSCC-96 reserved bits set
    (_bits((0x30, 8), (3, 3), (7, 3)), EpcDecodeError),  # partition 7
    (_bits((0x30, 8), (1, 3), (6, 3), (1_000_000, 20)), EpcDecodeError),  # prefix ≥ 10^6
    (_bits((0x30, 8), (1, 3), (0, 3), (1, 40), (10, 4)), EpcDecodeError),  # item ref ≥ 10
    (_bits((0x32, 8), (0, 3), (0, 3), (1, 40), (1, 1)), EpcDecodeError),  # SGLN ref must be 0
    (_bits((0x36, 8), (1, 3), (5, 3), (614141, 24), (812345, 20), total=208), EpcDecodeError),
    (
        _bits((0x36, 8), (1, 3), (5, 3), (1, 24), (1, 20), (0x20, 7), total=208),
        EpcDecodeError,  # space is not in GS1 character set 82
    ),
    (
        _bits((0x36, 8), (1, 3), (5, 3), (1, 24), (1, 20), (0x41, 7), (0, 7), (0x41, 7), total=208),
        EpcDecodeError,  # characters after the terminating zero
    ),
    ("000000000000000000000000", UnsupportedEpcError),  # unprogrammed
    ("3474257BF400000000000001", UnsupportedEpcError),  # GIAI-96
    ("E2801160600002054CC2096F", UnsupportedEpcError),  # a TID-like value
    ("FF", UnsupportedEpcError),
    ("3074257BF7194E4000001A85" + "0" * 101, EpcSyntaxError),  # longer than any Gen2 EPC
]


@pytest.mark.parametrize(("epc_hex", "error"), MALFORMED_HEX)
def test_malformed_hex_raises_a_typed_error(epc_hex: Any, error: type[EpcError]) -> None:
    with pytest.raises(error):
        decode_epc(epc_hex)


def test_unsupported_header_is_reported() -> None:
    with pytest.raises(UnsupportedEpcError, match="GIAI-96") as caught:
        decode_epc("3474257BF400000000000001")
    assert caught.value.header == 0x34


MALFORMED_URIS: list[tuple[str, type[EpcError]]] = [
    ("urn:epc:id:sgtin:0614141.812345", EpcSyntaxError),
    ("urn:epc:id:sgtin", EpcSyntaxError),
    ("urn:isbn:0451450523", EpcSyntaxError),
    ("https://id.gs1.org/01/09506000134352", EpcSyntaxError),
    ("urn:epc:tag:sgtin-96:8.0614141.812345.1", EpcSyntaxError),
    ("urn:epc:tag:sgtin-96:.0614141.812345.1", EpcSyntaxError),
    ("urn:epc:tag:sgtin-96:3", EpcSyntaxError),
    ("urn:epc:id:sgtin:0614141.812345.a/b", EpcSyntaxError),
    ("urn:epc:id:sgtin:0614141.812345.a%2", EpcSyntaxError),
    ("urn:epc:id:sgtin:0614141.812345.%20", EpcSyntaxError),
    ("urn:epc:id:sgtin:0614141.812345.a#b", EpcSyntaxError),
    ("urn:epc:id:sgtin:061414.812345.1", EpcValueError),
    ("urn:epc:id:sgtin:06141A1.812345.1", EpcValueError),
    ("urn:epc:id:sgtin:06141.8123456.1", EpcValueError),
    ("urn:epc:id:sgtin:0614141.812345.", EpcValueError),
    ("urn:epc:tag:sgtin-96:3.0614141.812345.274877906944", EpcValueError),
    ("urn:epc:tag:sgtin-96:3.0614141.812345.A1", EpcValueError),
    ("urn:epc:tag:sgtin-96:3.0614141.812345.0123", EpcValueError),
    ("urn:epc:tag:sgtin-198:3.0614141.812345.123456789012345678901", EpcValueError),
    ("urn:epc:id:sscc:0614141.123456789", EpcValueError),
    ("urn:epc:id:sgln:0614141.12345.abc", EpcValueError),  # needs SGLN-195
    ("urn:epc:id:grai:0614141.12345.0400", EpcValueError),  # needs GRAI-170
    ("urn:epc:id:giai:0614141.12345", UnsupportedEpcError),
    ("urn:epc:tag:sgtin-64:3.0614141.812345.1", UnsupportedEpcError),
    ("urn:epc:raw:96.x3074257BF7194E4000001A85", UnsupportedEpcError),
]


@pytest.mark.parametrize(("uri", "error"), MALFORMED_URIS)
def test_malformed_uris_raise_a_typed_error(uri: str, error: type[EpcError]) -> None:
    with pytest.raises(error):
        parse_epc_uri(uri)


def test_filter_value_with_a_tag_uri_is_refused() -> None:
    with pytest.raises(EpcValueError, match="own filter"):
        parse_epc_uri("urn:epc:tag:sgtin-96:3.0614141.812345.6789", filter_value=1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: encode_sgtin96("80614141123459", 1, 7), "check digit"),
        (lambda: encode_sgtin96("8061414112345", 1, 7), "check digit"),
        (lambda: encode_sgtin96("80614141123458", 1, 5), "6 to 12"),
        (lambda: encode_sgtin96("80614141123458", 1, 13), "6 to 12"),
        (lambda: encode_sgtin96("80614141123458", -1, 7), "non-negative"),
        (lambda: encode_sgtin96("80614141123458", True, 7), "non-negative"),
        (lambda: encode_sgtin96("80614141123458", 2**38, 7), "2\\^38"),
        (lambda: encode_sgtin96("8061414112345X", 1, 7), "digits"),
        (lambda: encode_sgtin96("80614141123458", 1, 7, filter_value=8), "filter"),
        (lambda: encode_sgtin198("80614141123458", "", 7), "1 to 20"),
        (lambda: encode_sgtin198("80614141123458", "é", 7), "set 82"),
        (lambda: encode_sscc96("106141412345678909", 7), "check digit"),
        (lambda: encode_sscc96("10614141234567890", 7), "18 digits"),
        (lambda: sscc_from_digits("106141412345678908", 4), "6 to 12"),
        (lambda: Sgtin("0614141", "812345", "1", filter_value=True), "filter"),
        (lambda: Sgtin("0614141", "812345", "1", scheme="sgtin-64"), "scheme"),  # type: ignore[arg-type]
    ],
)
def test_encoding_refuses_values_it_cannot_represent(call: Any, message: str) -> None:
    with pytest.raises(EpcValueError, match=message):
        call()


def test_epc_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="hex"):
        decode_epc("not hex")


company_prefixes = st.integers(6, 12).flatmap(
    lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)
)


@st.composite
def sgtins(draw: st.DrawFn) -> Sgtin:
    prefix = draw(company_prefixes)
    reference = draw(st.text("0123456789", min_size=13 - len(prefix), max_size=13 - len(prefix)))
    filter_value = draw(st.integers(0, 7))
    if draw(st.booleans()):
        return Sgtin(prefix, reference, str(draw(st.integers(0, 2**38 - 1))), filter_value)
    serial = draw(st.text(alphabet=sorted(_CSET82), min_size=1, max_size=20))
    return Sgtin(prefix, reference, serial, filter_value, "sgtin-198")


_CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


@given(sgtins())
def test_sgtin_round_trips_through_every_form(epc: Sgtin) -> None:
    assert decode_epc(epc.to_hex()) == epc
    assert parse_epc_uri(epc.tag_uri) == epc
    from_pure = parse_epc_uri(epc.pure_identity_uri, filter_value=epc.filter_value)
    assert from_pure.pure_identity_uri == epc.pure_identity_uri
    same = sgtin_from_gtin(epc.gtin, epc.serial, len(epc.company_prefix), epc.filter_value)
    assert same.pure_identity_uri == epc.pure_identity_uri
    assert len(epc.to_hex()) == (24 if epc.scheme == "sgtin-96" else 52)


@st.composite
def ssccs(draw: st.DrawFn) -> Sscc:
    prefix = draw(company_prefixes)
    reference = draw(st.text("0123456789", min_size=17 - len(prefix), max_size=17 - len(prefix)))
    return Sscc(prefix, reference, draw(st.integers(0, 7)))


@given(ssccs())
def test_sscc_round_trips_through_every_form(epc: Sscc) -> None:
    assert decode_epc(epc.to_hex()) == epc
    assert parse_epc_uri(epc.tag_uri) == epc
    assert sscc_from_digits(epc.sscc, len(epc.company_prefix), epc.filter_value) == epc


@given(st.text(alphabet="0123456789abcdefABCDEF", max_size=70))
def test_arbitrary_hex_decodes_or_raises_epc_error(epc_hex: str) -> None:
    try:
        epc = decode_epc(epc_hex)
    except EpcError:
        return
    canonical = epc.to_hex()
    common = min(len(canonical), len(epc_hex))  # beyond it, both have only zero padding
    assert canonical[:common] == epc_hex.upper()[:common]
    assert decode_epc(canonical) == epc


@given(st.sampled_from([0x30, 0x31, 0x32, 0x33, 0x36]), st.binary(min_size=0, max_size=30))
def test_supported_headers_with_random_bits_decode_or_raise_epc_error(
    header: int, rest: bytes
) -> None:
    try:
        epc = decode_epc(f"{header:02X}{rest.hex()}")
    except EpcError:
        return
    assert decode_epc(epc.to_hex()) == epc  # anything accepted re-encodes to itself


@given(st.text(max_size=60))
def test_arbitrary_text_as_uri_parses_or_raises_epc_error(text: str) -> None:
    for candidate in (text, "urn:epc:id:sgtin:" + text, "urn:epc:tag:sgtin-198:3." + text):
        try:
            epc = parse_epc_uri(candidate)
        except EpcError:
            continue
        assert parse_epc_uri(epc.tag_uri) == epc


@pytest.mark.parametrize(
    "call",
    [
        lambda: Sgtin("0614141", "812345", 6789),  # type: ignore[arg-type]
        lambda: Sgtin(614141, "812345", "1"),  # type: ignore[arg-type]
        lambda: Sgtin("0614141", "812345", None, scheme="sgtin-198"),  # type: ignore[arg-type]
        lambda: Sscc("0614141", 1234567890),  # type: ignore[arg-type]
        lambda: Sgln("0614141", "12345", 400),  # type: ignore[arg-type]
    ],
)
def test_wrong_types_are_refused_with_epc_value_error(call: Any) -> None:
    with pytest.raises(EpcValueError, match="must be text"):
        call()
