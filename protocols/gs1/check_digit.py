"""GS1 mod-10 check digits (GS1 General Specifications §7.9.1).

The same algorithm protects every numeric GS1 key: GTIN-8/12/13/14, GLN (13), SSCC (18), GSIN
(17), and the first 14 digits of a GRAI. Digits are weighted 3, 1, 3, 1, ... from the right
(the digit nearest the check digit gets 3); the check digit brings the sum to a multiple of 10.

>>> gs1_check_digit("8061414112345")
8
>>> is_valid_gs1_key("80614141123458")
True
"""

from __future__ import annotations

from protocols.gs1.errors import Gs1KeyError

KEY_LENGTHS = frozenset({8, 12, 13, 14, 17, 18})
"""Lengths of the GS1 keys protected by a trailing check digit: GTIN-8, GTIN-12, GTIN-13 and
GLN, GTIN-14, GSIN, SSCC."""


def _require_digits(text: str) -> None:
    # str.isdigit() accepts superscripts and other Unicode digits; GS1 keys are ASCII only.
    if not text or not (text.isascii() and text.isdigit()):
        raise Gs1KeyError(f"expected ASCII digits, got {text!r}")


def gs1_check_digit(digits_without_check: str) -> int:
    """Return the mod-10 check digit for ``digits_without_check``.

    Raises ``Gs1KeyError`` if the text is empty or not all ASCII digits.

    >>> gs1_check_digit("37613032110910342")   # an SSCC without its check digit
    0
    >>> gs1_check_digit("0950600013435")        # GTIN-14 09506000134352
    2
    >>> gs1_check_digit("12a")
    Traceback (most recent call last):
    ...
    protocols.gs1.errors.Gs1KeyError: expected ASCII digits, got '12a'
    """
    _require_digits(digits_without_check)
    total = 0
    for position, char in enumerate(reversed(digits_without_check)):
        total += int(char) * (3 if position % 2 == 0 else 1)
    return (10 - total % 10) % 10


def is_valid_gs1_key(digits: str, length: int | None = None) -> bool:
    """True if ``digits`` is a GS1 key of an accepted length whose check digit is right.

    Without ``length`` any of 8, 12, 13, 14, 17 or 18 digits is accepted; with it, only that
    length. Never raises: anything that is not a digit string is simply not a valid key.

    >>> is_valid_gs1_key("09506000134352")
    True
    >>> is_valid_gs1_key("09506000134353")
    False
    >>> is_valid_gs1_key("376130321109103420", length=18)
    True
    >>> is_valid_gs1_key("4006381333931", length=14)
    False
    """
    if length is None:
        if len(digits) not in KEY_LENGTHS:
            return False
    elif len(digits) != length:
        return False
    if not (digits.isascii() and digits.isdigit()):
        return False
    return gs1_check_digit(digits[:-1]) == int(digits[-1])


def require_gs1_key(digits: str, length: int, name: str) -> str:
    """Return ``digits`` if it is a valid ``length``-digit GS1 key, else raise ``Gs1KeyError``.

    >>> require_gs1_key("80614141123458", 14, "GTIN")
    '80614141123458'
    >>> require_gs1_key("80614141123459", 14, "GTIN")
    Traceback (most recent call last):
    ...
    protocols.gs1.errors.Gs1KeyError: GTIN 80614141123459: check digit should be 8
    """
    if len(digits) != length:
        raise Gs1KeyError(f"{name} must be {length} digits, got {digits!r}")
    _require_digits(digits)
    expected = gs1_check_digit(digits[:-1])
    if expected != int(digits[-1]):
        raise Gs1KeyError(f"{name} {digits}: check digit should be {expected}")
    return digits
