"""Cross-check of protocols.gs1.epc against epcpy, an independent TDS implementation.

Both directions over generated SGTIN-96, SGTIN-198 and SSCC-96 values (plus SGLN-96 and
GRAI-96): what we encode, epcpy decodes to the same URIs; what epcpy encodes, we decode to the
same tag URI. epcpy is a test-only dependency.
"""

from __future__ import annotations

import re
from typing import Any

from epcpy.epc_schemes.grai import GRAI, GRAIFilterValue
from epcpy.epc_schemes.sgln import SGLN, SGLNFilterValue
from epcpy.epc_schemes.sgtin import SGTIN, SGTINFilterValue
from epcpy.epc_schemes.sscc import SSCC, SSCCFilterValue
from epcpy.utils.parsers import hex_to_tag_encodable
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.gs1.epc import Grai, Sgln, Sgtin, Sscc, decode_epc

CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
EXAMPLES = settings(max_examples=300, deadline=None)


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=DIGITS, min_size=n, max_size=n)


prefixes = st.integers(6, 12).flatmap(digits)
filters = st.integers(0, 7)
numeric_serials = st.integers(0, 2**38 - 1).map(str)
# epcpy 0.1.8 mis-reads an escape with hex letters (%2F, %3C, %3E, %3F, i.e. '/', '<', '>',
# '?') when another character follows it, so those serials are left out of the comparison;
# test_gs1_epc.py checks our escaping of every character against TDS Table A-1.
_EPCPY_ESCAPE_BUG = re.compile(r"[/<>?].")
alpha_serials = st.text(alphabet=CSET82, min_size=1, max_size=20).filter(
    lambda serial: not _EPCPY_ESCAPE_BUG.search(serial)
)


@st.composite
def sgtin96s(draw: st.DrawFn) -> Sgtin:
    prefix = draw(prefixes)
    return Sgtin(prefix, draw(digits(13 - len(prefix))), draw(numeric_serials), draw(filters))


@st.composite
def sgtin198s(draw: st.DrawFn) -> Sgtin:
    prefix = draw(prefixes)
    reference = draw(digits(13 - len(prefix)))
    return Sgtin(prefix, reference, draw(alpha_serials), draw(filters), "sgtin-198")


@st.composite
def ssccs(draw: st.DrawFn) -> Sscc:
    prefix = draw(prefixes)
    return Sscc(prefix, draw(digits(17 - len(prefix))), draw(filters))


@st.composite
def sglns(draw: st.DrawFn) -> Sgln:
    prefix = draw(prefixes)
    extension = str(draw(st.integers(0, 2**41 - 1)))
    return Sgln(prefix, draw(digits(12 - len(prefix))), extension, draw(filters))


@st.composite
def grais(draw: st.DrawFn) -> Grai:
    prefix = draw(prefixes)
    return Grai(prefix, draw(digits(12 - len(prefix))), draw(numeric_serials), draw(filters))


def _theirs_from_hex(epc_hex: str) -> Any:
    return hex_to_tag_encodable(epc_hex)


@EXAMPLES
@given(sgtin96s())
def test_sgtin96_we_encode_epcpy_decodes(epc: Sgtin) -> None:
    theirs = _theirs_from_hex(epc.to_hex())
    assert theirs.epc_uri == epc.pure_identity_uri
    assert theirs.gtin() == epc.gtin
    scheme = SGTIN.BinaryCodingScheme.SGTIN_96
    filter_value = SGTINFilterValue(str(epc.filter_value))
    assert theirs.tag_uri(binary_coding_scheme=scheme, filter_value=filter_value) == epc.tag_uri


@EXAMPLES
@given(sgtin96s())
def test_sgtin96_epcpy_encodes_we_decode(epc: Sgtin) -> None:
    theirs = SGTIN(epc.pure_identity_uri)
    scheme = SGTIN.BinaryCodingScheme.SGTIN_96
    filter_value = SGTINFilterValue(str(epc.filter_value))
    their_hex = theirs.hex(binary_coding_scheme=scheme, filter_value=filter_value)
    assert decode_epc(their_hex) == epc
    assert decode_epc(their_hex).tag_uri == theirs.tag_uri(
        binary_coding_scheme=scheme, filter_value=filter_value
    )


@EXAMPLES
@given(sgtin198s())
def test_sgtin198_both_directions(epc: Sgtin) -> None:
    theirs = _theirs_from_hex(epc.to_hex())
    assert theirs.epc_uri == epc.pure_identity_uri
    scheme = SGTIN.BinaryCodingScheme.SGTIN_198
    filter_value = SGTINFilterValue(str(epc.filter_value))
    their_hex = SGTIN(epc.pure_identity_uri).hex(
        binary_coding_scheme=scheme, filter_value=filter_value
    )
    assert their_hex == epc.to_hex()
    assert decode_epc(their_hex) == epc


@EXAMPLES
@given(ssccs())
def test_sscc96_both_directions(epc: Sscc) -> None:
    theirs = _theirs_from_hex(epc.to_hex())
    assert theirs.epc_uri == epc.pure_identity_uri
    assert theirs.gs1_key() == epc.sscc
    filter_value = SSCCFilterValue(str(epc.filter_value))
    their_hex = SSCC(epc.pure_identity_uri).hex(filter_value=filter_value)
    assert decode_epc(their_hex) == epc
    assert SSCC(epc.pure_identity_uri).tag_uri(filter_value=filter_value) == epc.tag_uri


@EXAMPLES
@given(sglns())
def test_sgln96_both_directions(epc: Sgln) -> None:
    assert _theirs_from_hex(epc.to_hex()).epc_uri == epc.pure_identity_uri
    scheme = SGLN.BinaryCodingScheme.SGLN_96
    filter_value = SGLNFilterValue(str(epc.filter_value))
    their_hex = SGLN(epc.pure_identity_uri).hex(
        binary_coding_scheme=scheme, filter_value=filter_value
    )
    assert decode_epc(their_hex) == epc


@EXAMPLES
@given(grais())
def test_grai96_both_directions(epc: Grai) -> None:
    assert _theirs_from_hex(epc.to_hex()).epc_uri == epc.pure_identity_uri
    scheme = GRAI.BinaryCodingScheme.GRAI_96
    filter_value = GRAIFilterValue(str(epc.filter_value))
    their_hex = GRAI(epc.pure_identity_uri).hex(
        binary_coding_scheme=scheme, filter_value=filter_value
    )
    assert decode_epc(their_hex) == epc
