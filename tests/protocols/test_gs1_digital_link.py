"""GS1 Digital Link URIs (uncompressed syntax)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.gs1.element_string import (
    AiCombinationError,
    AiValueError,
    ElementStringError,
    ElementStringSyntaxError,
    UnsupportedAiError,
    format_digital_link,
    parse_digital_link,
    parse_element_string,
)


def test_digital_link_standard_example() -> None:
    # GS1 Digital Link URI Syntax: GTIN, batch and serial in the path, expiry in the query.
    uri = "https://id.gs1.org/01/09506000134352/10/ABC123/21/12345XYZ?17=260331"
    values = parse_digital_link(uri)
    assert values == {"01": "09506000134352", "10": "ABC123", "21": "12345XYZ", "17": "260331"}
    assert format_digital_link(values) == uri
    same = parse_element_string("(01)09506000134352(17)260331(10)ABC123(21)12345XYZ")
    assert same == values


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://example.com/01/9506000134352", {"01": "09506000134352"}),  # GTIN-13 padded
        ("https://example.com/01/96385074", {"01": "00000096385074"}),  # GTIN-8 padded
        ("http://example.com/a/b/01/09506000134352/21/X1", {"01": "09506000134352", "21": "X1"}),
        ("https://x.org/00/xyz/00/106141412345678908", {"00": "106141412345678908"}),
        ("https://x.org/414/0614141123452", {"414": "0614141123452"}),
        (
            "https://x.org/01/09506000134352/10/A%2FB%25?linkType=gs1:pip&17=260300&x=1#frag",
            {"01": "09506000134352", "10": "A/B%", "17": "260300"},
        ),
        ("https://x.org/01/09506000134352/10/A+B", {"01": "09506000134352", "10": "A+B"}),
        ("https://x.org/01/09506000134352?10=A%2BB", {"01": "09506000134352", "10": "A+B"}),
    ],
)
def test_accepted_links(uri: str, expected: dict[str, str]) -> None:
    assert parse_digital_link(uri) == expected


MALFORMED: list[tuple[str, type[ElementStringError]]] = [
    ("urn:epc:id:sgtin:0614141.812345.6789", ElementStringSyntaxError),
    ("ftp://x.org/01/09506000134352", ElementStringSyntaxError),
    ("https:///01/09506000134352", ElementStringSyntaxError),
    ("https://x.org/", ElementStringSyntaxError),
    ("https://x.org/10/ABC", ElementStringSyntaxError),
    ("https://x.org/01/09506000134352/21/X/10/L", ElementStringSyntaxError),  # order
    ("https://x.org/01/09506000134352/10", ElementStringSyntaxError),
    ("https://x.org/01/09506000134352/10/A%2", ElementStringSyntaxError),
    ("https://x.org/01/09506000134352/10/%FF", ElementStringSyntaxError),  # not UTF-8
    ("https://x.org/01/09506000134352?17=26%", ElementStringSyntaxError),
    ("https://[x.org/01/09506000134352", ElementStringSyntaxError),
    ("https://x.org/01/09506000134353", AiValueError),
    ("https://x.org/01/09506000134352?17=261301", AiValueError),
    ("https://x.org/01/09506000134352/10/A%20B", AiValueError),
    ("https://x.org/01/09506000134352?99=1", UnsupportedAiError),
    ("https://x.org/00/106141412345678908?21=X", AiCombinationError),
    ("https://x.org/01/09506000134352/10/L1?10=L2", AiCombinationError),
]


@pytest.mark.parametrize(("uri", "error"), MALFORMED)
def test_malformed_links(uri: str, error: type[ElementStringError]) -> None:
    with pytest.raises(error):
        parse_digital_link(uri)


def test_format_needs_exactly_one_primary_key() -> None:
    with pytest.raises(AiCombinationError):
        format_digital_link({"02": "10614141123459", "37": "5"})
    with pytest.raises(AiCombinationError):
        format_digital_link({"00": "106141412345678908", "414": "0614141123452"})


def test_format_under_another_base() -> None:
    uri = format_digital_link({"00": "106141412345678908"}, base="https://dl.example.com/x/")
    assert uri == "https://dl.example.com/x/00/106141412345678908"


cset82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


@given(
    st.text(alphabet=cset82, min_size=1, max_size=20),
    st.text(alphabet=cset82, min_size=1, max_size=20),
    st.dates(date(2000, 1, 1), date(2099, 12, 31)),
)
def test_round_trip(lot: str, serial: str, expiry: date) -> None:
    values = {"01": "09506000134352", "17": expiry.strftime("%y%m%d"), "10": lot, "21": serial}
    parsed = parse_digital_link(format_digital_link(values))
    assert parsed == values
    assert list(parsed) == ["01", "10", "21", "17"]


@given(st.text(max_size=80))
def test_arbitrary_text_parses_or_raises_element_string_error(text: str) -> None:
    for candidate in (text, "https://x.org/01/09506000134352/10/" + text, "https://x.org/" + text):
        try:
            values = parse_digital_link(candidate)
        except ElementStringError:
            continue
        assert parse_digital_link(format_digital_link(values)) == values
