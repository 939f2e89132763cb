"""GS1 Application Identifiers (AIs) this package understands, and how their values are checked.

The table follows the GS1 General Specifications (§3.2 AI table, §3.4 dates) and the GS1
Barcode Syntax Dictionary for the companion rules. Supported AIs::

    00 SSCC            N18 check digit        13 PACK DATE     N6 date
    01 GTIN            N14 check digit        15 BEST BEFORE   N6 date
    02 CONTENT         N14 check digit        16 SELL BY       N6 date
    10 BATCH/LOT       X..20                  17 USE BY/EXPIRY N6 date
    11 PROD DATE       N6 date                20 VARIANT       N2
    12 DUE DATE        N6 date                21 SERIAL        X..20
    30 VAR. COUNT      N..8                   37 COUNT         N..8
    400 ORDER NUMBER   X..30                  414 LOC No (GLN) N13 check digit

Dates are YYMMDD; DD = 00 means "the last day of that month" (§3.4.1), and the century comes
from the rule of §7.12 relative to a reference day the caller supplies (``resolve_gs1_date``).

>>> AIS["17"].title
'USE BY OR EXPIRY'
>>> validate_ai_value("17", "260230")
Traceback (most recent call last):
...
protocols.gs1.errors.AiValueError: AI (17) date 260230: day 30 does not exist in month 02
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

from protocols.gs1._tds import CSET82
from protocols.gs1.check_digit import gs1_check_digit
from protocols.gs1.errors import AiCombinationError, AiValueError, UnsupportedAiError

ValueKind = Literal["numeric", "alphanumeric", "date"]


@dataclass(frozen=True, slots=True)
class AiSpec:
    """What one AI's value looks like. ``predefined_length`` AIs need no FNC1 after them."""

    ai: str
    title: str
    kind: ValueKind
    min_length: int
    max_length: int
    check_digit: bool = False
    predefined_length: bool = False


def _fixed(ai: str, title: str, length: int, kind: ValueKind, check: bool = False) -> AiSpec:
    return AiSpec(ai, title, kind, length, length, check, predefined_length=True)


AIS: dict[str, AiSpec] = {
    spec.ai: spec
    for spec in (
        _fixed("00", "SSCC", 18, "numeric", check=True),
        _fixed("01", "GTIN", 14, "numeric", check=True),
        _fixed("02", "CONTENT", 14, "numeric", check=True),
        AiSpec("10", "BATCH/LOT", "alphanumeric", 1, 20),
        _fixed("11", "PROD DATE", 6, "date"),
        _fixed("12", "DUE DATE", 6, "date"),
        _fixed("13", "PACK DATE", 6, "date"),
        _fixed("15", "BEST BEFORE or BEST BY", 6, "date"),
        _fixed("16", "SELL BY", 6, "date"),
        _fixed("17", "USE BY OR EXPIRY", 6, "date"),
        _fixed("20", "VARIANT", 2, "numeric"),
        AiSpec("21", "SERIAL", "alphanumeric", 1, 20),
        AiSpec("30", "VAR. COUNT", "numeric", 1, 8),
        AiSpec("37", "COUNT", "numeric", 1, 8),
        AiSpec("400", "ORDER NUMBER", "alphanumeric", 1, 30),
        _fixed("414", "LOC No.", 13, "numeric", check=True),
    )
}

# Companion rules (GS1 General Specifications §4.14, Barcode Syntax Dictionary "req"/"ex"),
# restricted to the AIs above: each tuple lists alternatives, one of which must be present.
_REQUIRES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("10", "11", "12", "13", "15", "16", "17", "20", "30"), ("01", "02")),
    "21": ("01",),
    "02": ("37",),
    "37": ("02",),
}
_EXCLUDES: tuple[tuple[str, str], ...] = (("01", "02"), ("01", "37"))


def spec_for(ai: str) -> AiSpec:
    """The ``AiSpec`` of ``ai``, or ``UnsupportedAiError``."""
    spec = AIS.get(ai) if isinstance(ai, str) else None
    if spec is None:
        raise UnsupportedAiError(f"AI ({ai}) is not supported", ai)
    return spec


def _check_date(ai: str, value: str) -> None:
    month, day = int(value[2:4]), int(value[4:6])
    if not 1 <= month <= 12:
        raise AiValueError(f"AI ({ai}) date {value}: month {value[2:4]} is not 01-12", ai)
    # The century is not known here; YY % 4 == 0 is a leap year for every century the rule of
    # §7.12 can choose, except 2100 and 1900, which the caller resolves with resolve_gs1_date.
    leap_year = 2000 + int(value[:2])
    if day > calendar.monthrange(leap_year, month)[1]:
        raise AiValueError(
            f"AI ({ai}) date {value}: day {value[4:6]} does not exist in month {value[2:4]}", ai
        )


def validate_ai_value(ai: str, value: str) -> str:
    """Return ``value`` if it is valid for ``ai``; raise ``AiValueError`` saying why not.

    >>> validate_ai_value("01", "09506000134352")
    '09506000134352'
    >>> validate_ai_value("10", "A B")
    Traceback (most recent call last):
    ...
    protocols.gs1.errors.AiValueError: AI (10) value 'A B' has characters outside GS1 set 82: [' ']
    """
    spec = spec_for(ai)
    if not isinstance(value, str):
        raise AiValueError(f"AI ({ai}) value must be text, got {type(value).__name__}", ai)
    if not spec.min_length <= len(value) <= spec.max_length:
        size = (
            str(spec.max_length)
            if spec.min_length == spec.max_length
            else f"{spec.min_length} to {spec.max_length}"
        )
        raise AiValueError(f"AI ({ai}) value {value!r} must be {size} characters", ai)
    if spec.kind == "alphanumeric":
        bad = sorted({char for char in value if char not in CSET82})
        if bad:
            raise AiValueError(
                f"AI ({ai}) value {value!r} has characters outside GS1 set 82: {bad}", ai
            )
        return value
    if not (value.isascii() and value.isdigit()):
        raise AiValueError(f"AI ({ai}) value {value!r} must be digits", ai)
    if spec.check_digit:
        expected = gs1_check_digit(value[:-1])
        if int(value[-1]) != expected:
            raise AiValueError(f"AI ({ai}) {value}: check digit should be {expected}", ai)
    if spec.kind == "date":
        _check_date(ai, value)
    return value


def check_associations(values: Mapping[str, str]) -> None:
    """Raise ``AiCombinationError`` if the AIs present break a companion or exclusion rule.

    >>> check_associations({"01": "09506000134352", "21": "X1"})
    >>> check_associations({"21": "X1"})
    Traceback (most recent call last):
    ...
    protocols.gs1.errors.AiCombinationError: AI (21) requires (01)
    """
    for first, second in _EXCLUDES:
        if first in values and second in values:
            raise AiCombinationError(f"AI ({first}) and AI ({second}) must not appear together")
    for ai, alternatives in _REQUIRES.items():
        if ai in values and not any(other in values for other in alternatives):
            wanted = " or ".join(f"({other})" for other in alternatives)
            raise AiCombinationError(f"AI ({ai}) requires {wanted}")


def resolve_gs1_date(yymmdd: str, *, today: date, ai: str = "17") -> date:
    """The calendar day of a GS1 YYMMDD value, read relative to ``today``.

    The century follows GS1 General Specifications §7.12: a year 51-99 ahead of ``today``'s
    two-digit year belongs to the previous century, one 50-99 behind to the next, any other
    to the current century. DD = 00 means the last day of the month (§3.4.1). ``ai`` (any of
    the date AIs) only names the field in error messages.

    >>> resolve_gs1_date("260200", today=date(2026, 1, 15))
    datetime.date(2026, 2, 28)
    >>> resolve_gs1_date("771231", today=date(2026, 1, 15))
    datetime.date(1977, 12, 31)
    >>> resolve_gs1_date("760101", today=date(2026, 1, 15))
    datetime.date(2076, 1, 1)
    """
    if spec_for(ai).kind != "date":
        raise UnsupportedAiError(f"AI ({ai}) is not a date", ai)
    validate_ai_value(ai, yymmdd)
    two_digit_year, month, day = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    century = today.year // 100
    difference = two_digit_year - today.year % 100
    if 51 <= difference <= 99:
        century -= 1
    elif -99 <= difference <= -50:
        century += 1
    year = century * 100 + two_digit_year
    last_day = calendar.monthrange(year, month)[1]
    if day == 0:
        return date(year, month, last_day)
    if day > last_day:
        raise AiValueError(f"AI ({ai}) date {yymmdd}: {year}-{month:02d} has no day {day}", ai)
    return date(year, month, day)
