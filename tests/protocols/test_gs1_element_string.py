"""GS1 element strings: HRI and FNC1 barcode forms, AI value rules, dates and century rule."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.gs1.ai import AIS, resolve_gs1_date
from protocols.gs1.element_string import (
    GS,
    AiCombinationError,
    AiValueError,
    ElementStringError,
    ElementStringSyntaxError,
    UnsupportedAiError,
    format_element_string,
    parse_element_string,
)

PACK = {"01": "09506000134352", "17": "260331", "10": "ABC123", "21": "12345XYZ"}


def test_hri_and_barcode_forms_of_a_medicine_pack_agree() -> None:
    # The EU FMD / DSCSA pack: GTIN, expiry, batch, serial (GS1 General Specifications §4.15).
    hri = "(01)09506000134352(17)260331(10)ABC123(21)12345XYZ"
    barcode = "]d2" + "0109506000134352" + "17260331" + "10ABC123" + GS + "2112345XYZ"
    assert parse_element_string(hri) == PACK
    assert parse_element_string(barcode) == PACK
    assert format_element_string(PACK) == hri
    assert format_element_string(PACK, form="barcode") == barcode.removeprefix("]d2")
    assert list(parse_element_string(hri)) == ["01", "17", "10", "21"]


@pytest.mark.parametrize(
    "text",
    [
        "01095060001343521726033110ABC123" + GS + "2112345XYZ",  # no identifier
        GS + "01095060001343521726033110ABC123" + GS + "2112345XYZ",  # leading FNC1
        "]C10109506000134352" + GS + "1726033110ABC123" + GS + "2112345XYZ",  # extra GS
        "]Q301095060001343521726033110ABC123" + GS + "2112345XYZ",
        "(01)09506000134352 (17)260331 (10)ABC123 (21)12345XYZ",  # spaces as printed
        "  (01)09506000134352(17)260331(10)ABC123(21)12345XYZ\n",
    ],
)
def test_accepted_variants(text: str) -> None:
    assert parse_element_string(text) == PACK


def test_logistic_label_with_sscc_content_and_count() -> None:
    label = "(00)106141412345678908(02)10614141123459(37)24(10)LOT7(17)270100"
    values = parse_element_string(label)
    assert values["00"] == "106141412345678908"
    assert values["37"] == "24"
    barcode = format_element_string(values, form="barcode")
    assert barcode == "0010614141234567890802106141411234593724" + GS + "10LOT7" + GS + "17270100"
    assert parse_element_string(barcode) == values


def test_hri_escapes_open_brackets_in_values() -> None:
    values = {"01": "09506000134352", "10": "A(1)B"}
    hri = format_element_string(values)
    assert hri == "(01)09506000134352(10)A\\(1)B"
    assert parse_element_string(hri) == values


def test_same_ai_twice_with_the_same_value_is_kept_once() -> None:
    assert parse_element_string("(01)09506000134352(10)L1(10)L1") == {
        "01": "09506000134352",
        "10": "L1",
    }


def test_companion_rules_can_be_skipped_for_partial_data() -> None:
    assert parse_element_string("(10)L1", check_associations=False) == {"10": "L1"}


MALFORMED: list[tuple[str, type[ElementStringError]]] = [
    ("", ElementStringSyntaxError),
    ("(01", ElementStringSyntaxError),
    ("(1)09506000134352", ElementStringSyntaxError),
    ("01)09506000134352", AiValueError),  # read as barcode data: ')' in a GTIN
    ("(01)", ElementStringSyntaxError),
    ("(01)09506000134352(10)", ElementStringSyntaxError),
    ("010950600013435", ElementStringSyntaxError),  # truncated fixed-length value
    ("]d2", ElementStringSyntaxError),
    ("]d2AB12", ElementStringSyntaxError),
    ("010950600013435210L1" + GS + GS + "21X", ElementStringSyntaxError),
    ("(99)ABC", UnsupportedAiError),
    ("(8003)ABC", UnsupportedAiError),
    ("010950600013435299ABC", UnsupportedAiError),
    ("(01)09506000134353", AiValueError),  # check digit
    ("(01)9506000134352", AiValueError),  # GTIN-13 where 14 digits are required
    ("(00)106141412345678909", AiValueError),
    ("(01)09506000134352(17)261301", AiValueError),  # month 13
    ("(01)09506000134352(17)260230", AiValueError),  # 30 February
    ("(01)09506000134352(17)250229", AiValueError),  # 29 February, not a leap year
    ("(01)09506000134352(17)26033", AiValueError),
    ("(01)09506000134352(17)2603AB", AiValueError),
    ("(01)09506000134352(10)ABCDEFGHIJKLMNOPQRSTU", AiValueError),  # 21 > 20 characters
    ("(01)09506000134352(21)Ä1", AiValueError),
    ("(01)09506000134352(21)A#1", AiValueError),
    ("(01)09506000134352(30)123456789", AiValueError),
    ("(21)X1", AiCombinationError),
    ("(01)09506000134352(02)10614141123459(37)1", AiCombinationError),
    ("(02)10614141123459", AiCombinationError),
    ("(01)09506000134352(10)L1(10)L2", AiCombinationError),
]


@pytest.mark.parametrize(("text", "error"), MALFORMED)
def test_malformed_element_strings(text: str, error: type[ElementStringError]) -> None:
    with pytest.raises(error):
        parse_element_string(text)


def test_errors_name_the_ai() -> None:
    with pytest.raises(AiValueError) as caught:
        parse_element_string("(01)09506000134352(17)260230")
    assert caught.value.ai == "17"
    with pytest.raises(UnsupportedAiError) as unsupported:
        parse_element_string("(7003)2603311200")
    assert unsupported.value.ai == "7003"


def test_formatting_validates_too() -> None:
    with pytest.raises(AiValueError):
        format_element_string({"01": "09506000134353"})
    with pytest.raises(AiCombinationError):
        format_element_string({"21": "X"})
    with pytest.raises(ElementStringSyntaxError):
        format_element_string({})


@pytest.mark.parametrize(
    ("yymmdd", "today", "expected"),
    [
        ("260331", date(2026, 3, 1), date(2026, 3, 31)),
        ("260200", date(2026, 3, 1), date(2026, 2, 28)),  # DD=00: last day of the month
        ("240200", date(2026, 3, 1), date(2024, 2, 29)),  # ... of a leap February
        ("761231", date(2026, 3, 1), date(2076, 12, 31)),  # 50 ahead: same century
        ("770101", date(2026, 3, 1), date(1977, 1, 1)),  # 51 ahead: previous century
        ("000101", date(2049, 6, 1), date(2000, 1, 1)),  # 49 behind: same century
        ("990101", date(2049, 6, 1), date(2099, 1, 1)),  # 50 ahead: same century
        ("000101", date(2050, 6, 1), date(2100, 1, 1)),  # 50 behind: next century
        ("991231", date(2000, 1, 1), date(1999, 12, 31)),
        ("011231", date(1999, 12, 31), date(2001, 12, 31)),
    ],
)
def test_century_rule_and_day_zero(yymmdd: str, today: date, expected: date) -> None:
    # GS1 General Specifications §7.12 (century) and §3.4.1 (DD = 00).
    assert resolve_gs1_date(yymmdd, today=today) == expected


def test_february_29_of_a_non_leap_century_year_is_refused() -> None:
    # 000229 is valid structurally (2000 was a leap year) but 2100 is not a leap year.
    assert resolve_gs1_date("000229", today=date(2026, 1, 1)) == date(2000, 2, 29)
    with pytest.raises(AiValueError, match="2100-02 has no day 29"):
        resolve_gs1_date("000229", today=date(2060, 1, 1), ai="11")


def test_resolve_gs1_date_only_for_date_ais() -> None:
    with pytest.raises(UnsupportedAiError):
        resolve_gs1_date("260101", today=date(2026, 1, 1), ai="10")


def test_every_supported_ai_formats_and_parses_back() -> None:
    for ai, spec in AIS.items():
        sample = {"numeric": "1" * spec.max_length, "alphanumeric": "A-1", "date": "260101"}[
            spec.kind
        ]
        if spec.check_digit:
            from protocols.gs1.check_digit import gs1_check_digit

            body = "0" * (spec.max_length - 1)
            sample = body + str(gs1_check_digit(body))
        values = {ai: sample}
        for form in ("hri", "barcode"):
            text = format_element_string(values, form=form) if _standalone(ai) else None
            if text is not None:
                assert parse_element_string(text) == values


def _standalone(ai: str) -> bool:
    return ai in ("00", "01", "400", "414")


cset82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


@given(
    st.text(alphabet=cset82, min_size=1, max_size=20),
    st.text(alphabet=cset82, min_size=1, max_size=20),
    st.dates(date(2000, 1, 1), date(2099, 12, 31)),
)
def test_round_trip_through_both_forms(lot: str, serial: str, expiry: date) -> None:
    values = {"01": "09506000134352", "10": lot, "21": serial, "17": expiry.strftime("%y%m%d")}
    for form in ("hri", "barcode"):
        assert parse_element_string(format_element_string(values, form=form)) == values
    # With 2049 as the reference year, §7.12 maps YY 00-99 onto 2000-2099.
    assert resolve_gs1_date(values["17"], today=date(2049, 6, 1)) == expiry


@given(st.text(max_size=60))
def test_arbitrary_text_parses_or_raises_element_string_error(text: str) -> None:
    for candidate in (text, "(01)09506000134352" + text, "]d20109506000134352" + text):
        try:
            values = parse_element_string(candidate)
        except ElementStringError:
            continue
        assert parse_element_string(format_element_string(values)) == values


def test_wrong_value_types_are_refused() -> None:
    with pytest.raises(AiValueError, match="must be text"):
        format_element_string({"01": 9506000134352})  # type: ignore[dict-item]
    with pytest.raises(UnsupportedAiError):
        format_element_string({1: "09506000134352"})  # type: ignore[dict-item]
    with pytest.raises(ElementStringSyntaxError):
        parse_element_string("(٠١)09506000134352")  # Arabic-Indic digits are not an AI
