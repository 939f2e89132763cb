"""GS1 element strings: the bracketed human-readable form and the FNC1-separated barcode data.

``(01)09506000134352(17)260331(10)ABC123`` is the human-readable interpretation (HRI). A
scanner delivers the same data (GS1 DataMatrix, GS1-128, GS1 QR) as AI and value run together,
``010950600013435217260331`` then ``10ABC123``, with an ASCII GS (0x1D) standing for FNC1 after
each variable-length value that is not last. Both parse to the same ordered mapping
of AI to value, checked against ``protocols.gs1.ai``. Digital Link URIs are handled by
``protocols.gs1.digital_link`` and re-exported here.

Errors (see ``protocols.gs1.errors``)::

    ElementStringError
     ├── ElementStringSyntaxError   brackets, separators, truncated data, URI shape
     ├── UnsupportedAiError         an AI not in ``protocols.gs1.ai.AIS``
     ├── AiValueError               length, characters, check digit, date
     └── AiCombinationError         a repeated AI with another value, missing companion AI

>>> parse_element_string("(01)09506000134352(17)260331(10)ABC123")
{'01': '09506000134352', '17': '260331', '10': 'ABC123'}
>>> parse_element_string("]d20109506000134352" "10ABC123" + GS + "17260331")
{'01': '09506000134352', '10': 'ABC123', '17': '260331'}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Literal

from protocols.gs1.ai import AIS, spec_for, validate_ai_value
from protocols.gs1.ai import check_associations as _check_associations
from protocols.gs1.digital_link import format_digital_link, parse_digital_link
from protocols.gs1.errors import (
    AiCombinationError,
    AiValueError,
    ElementStringError,
    ElementStringSyntaxError,
    UnsupportedAiError,
)

__all__ = [
    "GS",
    "AiCombinationError",
    "AiValueError",
    "ElementStringError",
    "ElementStringSyntaxError",
    "UnsupportedAiError",
    "format_digital_link",
    "format_element_string",
    "parse_digital_link",
    "parse_element_string",
]

GS = "\x1d"
"""ASCII group separator: how scanners transmit FNC1 used as a field separator."""

# ISO/IEC 15424 symbology identifiers that announce GS1 data (GS1-128, DataMatrix, QR,
# DataBar/Composite, DotCode); a scanner may prefix the data with one of them.
_SYMBOLOGY_IDS = ("]C1", "]d2", "]Q3", "]e0", "]J1")
_HRI_AI = re.compile(r"\(([0-9]{2,4})\)")


def _collect(pairs: Iterable[tuple[str, str]], check: bool) -> dict[str, str]:
    values: dict[str, str] = {}
    for ai, value in pairs:
        validate_ai_value(ai, value)
        if ai in values and values[ai] != value:
            raise AiCombinationError(f"AI ({ai}) appears twice with different values")
        values[ai] = value
    if not values:
        raise ElementStringSyntaxError("element string is empty")
    if check:
        _check_associations(values)
    return values


def _hri_pairs(text: str) -> Iterable[tuple[str, str]]:
    position = 0
    while position < len(text):
        match = _HRI_AI.match(text, position)
        if match is None:
            raise ElementStringSyntaxError(f"expected '(AI)' at position {position}: {text!r}")
        ai = match.group(1)
        spec_for(ai)
        end = match.end()
        # A value runs to the next '(' that is not escaped as '\(' (GS1 Syntax Engine style).
        while end < len(text) and not (text[end] == "(" and text[end - 1] != "\\"):
            end += 1
        value = text[match.end() : end].strip().replace("\\(", "(")
        if not value:
            raise ElementStringSyntaxError(f"AI ({ai}) has an empty value")
        yield ai, value
        position = end


def _match_ai(data: str, position: int) -> str:
    for length in (2, 3, 4):
        candidate = data[position : position + length]
        if candidate in AIS:
            return candidate
    shown = data[position : position + 4]
    if not (shown[:2].isascii() and shown[:2].isdigit()):
        raise ElementStringSyntaxError(f"expected an AI at position {position}, got {shown!r}")
    raise UnsupportedAiError(f"no supported AI at the start of {shown!r}", shown)


def _barcode_pairs(data: str) -> Iterable[tuple[str, str]]:
    position = 0
    while position < len(data):
        ai = _match_ai(data, position)
        spec = AIS[ai]
        start = position + len(ai)
        if spec.predefined_length:
            end = start + spec.max_length
            if end > len(data):
                raise ElementStringSyntaxError(f"AI ({ai}) needs {spec.max_length} characters")
            after = end + 1 if data[end : end + 1] == GS else end  # a needless FNC1 is harmless
        else:
            separator = data.find(GS, start)
            end = len(data) if separator < 0 else separator
            after = end + 1
        value = data[start:end]
        if not value:
            raise ElementStringSyntaxError(f"AI ({ai}) has an empty value")
        yield ai, value
        position = after


def _escape_hri(value: str) -> str:
    return value.replace("(", "\\(")


def parse_element_string(text: str, *, check_associations: bool = True) -> dict[str, str]:
    """Parse an element string, HRI ``(01)…(10)…`` or barcode data, into AI → value.

    Barcode data may start with a symbology identifier (``]d2``, ``]C1``, ``]Q3``, ...) or a
    leading FNC1 (GS). Values keep their order; a repeated AI with the same value is kept once.
    ``check_associations=False`` skips the companion rules (e.g. to read a lone ``(10)``).

    >>> parse_element_string("(00)106141412345678908")
    {'00': '106141412345678908'}
    >>> parse_element_string("(01)09506000134352(17)261301")
    Traceback (most recent call last):
    ...
    protocols.gs1.errors.AiValueError: AI (17) date 261301: month 13 is not 01-12
    """
    if not isinstance(text, str):
        raise ElementStringSyntaxError(f"element string must be text, got {type(text).__name__}")
    stripped = text.strip()
    if stripped.startswith("("):
        return _collect(_hri_pairs(stripped), check_associations)
    for identifier in _SYMBOLOGY_IDS:
        if stripped.startswith(identifier):
            stripped = stripped[len(identifier) :]
            break
    return _collect(_barcode_pairs(stripped.removeprefix(GS)), check_associations)


def format_element_string(
    values: Mapping[str, str], *, form: Literal["hri", "barcode"] = "hri"
) -> str:
    """Format AI → value as HRI (``form="hri"``) or as barcode data (``form="barcode"``).

    Values are checked as in parsing. Barcode data has a GS after every variable-length value
    that is not last and no leading FNC1: the symbol encoder adds FNC1 in first position.

    >>> format_element_string({"01": "09506000134352", "10": "AB(1)", "17": "260331"})
    '(01)09506000134352(10)AB\\\\(1)(17)260331'
    >>> format_element_string({"01": "09506000134352", "10": "AB1", "17": "260331"},
    ...                       form="barcode")
    '010950600013435210AB1\\x1d17260331'
    """
    checked = _collect(values.items(), check=True)
    if form == "hri":
        return "".join(
            f"({ai}){value.replace('(', chr(92) + '(')}" for ai, value in checked.items()
        )
    parts: list[str] = []
    items = list(checked.items())
    for index, (ai, value) in enumerate(items):
        parts.append(ai + value)
        if not AIS[ai].predefined_length and index < len(items) - 1:
            parts.append(GS)
    return "".join(parts)
