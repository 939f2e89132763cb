"""Helpers shared by the payload decoders: strict JSON, numbers, times, the decoded result.

Decoders raise :class:`PayloadError` for a message they cannot read at all, and report problems
with single values (one sensor of several) in :attr:`Decoded.problems`; the router turns both
into a ``DeadLetter`` so that no exception leaves it.

>>> strict_json(b'{"value": 4.5}')
{'value': 4.5}
>>> strict_json(b'{"value": NaN}')
Traceback (most recent call last):
...
protocols.payloads.common.PayloadError: not valid JSON: NaN is not allowed
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

# One definition of "physically possible" for the edge decoders and cloud ingest: readings
# outside [absolute zero, 1000 °C] are not temperatures, the payload is wrong.
from protocols.records import ABSOLUTE_ZERO_C, MAX_PLAUSIBLE_C, Reading


class PayloadError(ValueError):
    """The payload cannot be decoded; the message is the reason kept in the dead letter."""


@dataclass(frozen=True)
class Message:
    """One MQTT message as the source received it."""

    topic: str
    payload: bytes
    received_at: datetime
    retained: bool = False


@dataclass
class Decoded:
    """Readings decoded from one message, and problems with parts of it."""

    readings: list[Reading] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _refuse_constant(token: str) -> float:
    raise PayloadError(f"not valid JSON: {token} is not allowed")


def strict_json(payload: bytes) -> object:
    """Parses UTF-8 JSON, refusing NaN/Infinity, invalid UTF-8 and absurd nesting."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PayloadError(f"not UTF-8: {err.reason} at byte {err.start}") from err
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as err:
        raise PayloadError(
            f"not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from err
    except RecursionError as err:
        raise PayloadError("not valid JSON: nested too deeply") from err


def require_object(value: object, what: str) -> dict[str, object]:
    """``value`` if it is a JSON object, else PayloadError naming ``what``.

    >>> require_object([1], "payload")
    Traceback (most recent call last):
    ...
    protocols.payloads.common.PayloadError: payload must be a JSON object, not an array
    """
    if not isinstance(value, dict):
        raise PayloadError(f"{what} must be a JSON object, not {_json_type(value)}")
    return value


def number(value: object, what: str) -> float:
    """A finite JSON number (booleans are not numbers).

    >>> number(7, "value")
    7.0
    >>> number(True, "value")
    Traceback (most recent call last):
    ...
    protocols.payloads.common.PayloadError: value must be a number, not a boolean
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{what} must be a number, not {_json_type(value)}")
    result = float(value)
    if not math.isfinite(result):
        raise PayloadError(f"{what} is not finite: {value!r}")
    return result


def celsius(value: float, what: str) -> float:
    """``value`` if it is a plausible temperature in °C (see ``ABSOLUTE_ZERO_C``).

    >>> celsius(-80.0, "t")
    -80.0
    >>> celsius(-300.0, "t")
    Traceback (most recent call last):
    ...
    protocols.payloads.common.PayloadError: t -300.0 °C is not a plausible temperature
    """
    if not ABSOLUTE_ZERO_C <= value <= MAX_PLAUSIBLE_C:
        raise PayloadError(f"{what} {value} °C is not a plausible temperature")
    return value


def relative_humidity(value: float, what: str) -> float:
    """``value`` if it is within 0-100 %RH.

    >>> relative_humidity(55.5, "rh")
    55.5
    """
    if not 0.0 <= value <= 100.0:
        raise PayloadError(f"{what} {value} %RH is outside 0-100")
    return value


def fahrenheit_to_celsius(value: float) -> float:
    """Converts °F to °C, rounded to 1e-9 to hide binary noise.

    >>> fahrenheit_to_celsius(41.0)
    5.0
    """
    return round((value - 32.0) * 5.0 / 9.0, 9)


def rfc3339(value: object, what: str) -> datetime:
    """An RFC 3339 timestamp with an offset, as an aware UTC datetime.

    >>> rfc3339("2026-03-01T12:00:00.123456789+01:00", "time").isoformat()
    '2026-03-01T11:00:00.123456+00:00'
    """
    if not isinstance(value, str):
        raise PayloadError(f"{what} must be an RFC 3339 string, not {_json_type(value)}")
    if len(value) > 64 or "T" not in value.upper():
        raise PayloadError(f"{what} is not an RFC 3339 timestamp: {value[:64]!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as err:
        raise PayloadError(f"{what} is not an RFC 3339 timestamp: {value!r}") from err
    if parsed.tzinfo is None:
        raise PayloadError(f"{what} has no UTC offset: {value!r}")
    return parsed.astimezone(UTC)


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number" if isinstance(value, int | float) else type(value).__name__
