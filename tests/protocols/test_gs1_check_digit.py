"""GS1 mod-10 check digits (GS1 General Specifications §7.9.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.gs1.check_digit import gs1_check_digit, is_valid_gs1_key, require_gs1_key
from protocols.gs1.errors import Gs1KeyError

# Keys printed in GS1 documents: the GS1 General Specifications' GTIN-13 and SSCC examples,
# TDS §7's GTIN 80614141123458, and a GTIN-8 and a GTIN-12 with their published check digits.
VALID_KEYS = [
    "80614141123458",  # GTIN-14, TDS Appendix E example
    "09506000134352",  # GTIN-14, GS1 Digital Link standard examples
    "9506000134352",  # GTIN-13 of the same
    "106141412345678908",  # SSCC, TDS §6.3.2 example
    "376130321109103420",  # SSCC
    "0614141123452",  # GLN of TDS §6.3.3's SGLN
    "96385074",  # GTIN-8
    "614141000036",  # GTIN-12 (UPC-A) from GS1 US examples
]


@pytest.mark.parametrize("key", VALID_KEYS)
def test_published_keys_are_valid(key: str) -> None:
    assert is_valid_gs1_key(key)
    assert gs1_check_digit(key[:-1]) == int(key[-1])
    assert require_gs1_key(key, len(key), "key") == key


@pytest.mark.parametrize("key", VALID_KEYS)
def test_changing_any_single_digit_is_detected(key: str) -> None:
    for position in range(len(key)):
        for digit in "0123456789":
            if digit != key[position]:
                altered = key[:position] + digit + key[position + 1 :]
                assert not is_valid_gs1_key(altered), altered


@pytest.mark.parametrize(
    "text",
    ["", "12a4", "１２３", "²³", " 123", "12.3"],
)
def test_check_digit_refuses_non_ascii_digits(text: str) -> None:
    with pytest.raises(Gs1KeyError):
        gs1_check_digit(text)


@pytest.mark.parametrize(
    ("digits", "length"),
    [
        ("8061414112345", None),  # 13 digits but wrong check for a GTIN-13
        ("1234567", None),  # not a key length
        ("80614141123458", 13),  # valid GTIN-14 but asked for 13
        ("806141411234５8", None),  # full-width digit
        ("", None),
    ],
)
def test_invalid_keys(digits: str, length: int | None) -> None:
    assert not is_valid_gs1_key(digits, length)


def test_require_gs1_key_says_what_is_wrong() -> None:
    with pytest.raises(Gs1KeyError, match="must be 18 digits"):
        require_gs1_key("12345", 18, "SSCC")
    with pytest.raises(Gs1KeyError, match="check digit should be 8"):
        require_gs1_key("106141412345678909", 18, "SSCC")


@given(st.text(alphabet="0123456789", min_size=1, max_size=17))
def test_appending_the_check_digit_always_gives_a_valid_key(body: str) -> None:
    key = body + str(gs1_check_digit(body))
    assert is_valid_gs1_key(key, len(key))
    # Transposing two adjacent different digits is caught unless they differ by 5 (a known
    # limit of the mod-10 weights 3/1).
    for i in range(len(key) - 2):
        a, b = key[i], key[i + 1]
        if a != b and abs(int(a) - int(b)) != 5:
            swapped = key[:i] + b + a + key[i + 2 :]
            assert not is_valid_gs1_key(swapped, len(key))
