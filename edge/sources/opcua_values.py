"""OPC-UA DataValues as coldtrace records: quality, device time, °C, status code names.

Pure functions over asyncua's ``ua`` types; :mod:`edge.sources.opcua` does the I/O. The rules:

* quality from the StatusCode's severity bits (OPC-UA Part 4 §7.39: top two bits 00 Good,
  01 Uncertain, 1x Bad); a Bad value, or a value that is not a finite number, gives a ``bad``
  reading without a value;
* the value in °C: °C as is, °F and K converted (the variable's EngineeringUnits UnitId);
* time is the SourceTimestamp. When the server sends none, the ServerTimestamp is used (quality
  unchanged). A SourceTimestamp that cannot be a device time (before 1970, such as 1900, the NTP
  epoch that a device with an unset clock sends, or beyond 9999) is not trusted: the
  ServerTimestamp, else the receipt time, with quality ``uncertain``. Without any usable
  timestamp, the receipt time, ``uncertain``; never silently.
* whatever still cannot become a ``Reading`` becomes a ``DeadLetter`` with the DataValue's text
  and the reason: :func:`record_of` never raises, so one bad value never stops the others.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from asyncua import ua
from asyncua.ua.status_codes import code_to_name_doc
from pydantic import ValidationError

from protocols.records import EARLIEST, LATEST, DeadLetter, Quality, Reading
from protocols.records import Record as AnyRecord

_NO_TIME_BEFORE = datetime(1601, 1, 2, tzinfo=UTC)  # OPC-UA's "no timestamp" is 1601-01-01
_RAW_LIMIT = 4096
_RECENT = 64  # sample keys remembered per node for de-duplication

# UNECE Recommendation 20 codes, as OPC-UA Part 8 encodes them in EUInformation.UnitId.
CELSIUS = int.from_bytes(b"CEL", "big")
TO_CELSIUS: dict[int, Callable[[float], float]] = {
    CELSIUS: lambda v: v,
    int.from_bytes(b"FAH", "big"): lambda v: round((v - 32.0) * 5.0 / 9.0, 9),
    int.from_bytes(b"KEL", "big"): lambda v: round(v - 273.15, 9),
}


def status_name(status: ua.StatusCode | int | None) -> str:
    """A StatusCode by its name, as operators look it up (not ``StatusCode(value=…)``).

    >>> status_name(ua.StatusCode(0x800C0000))
    'BadShutdown'
    >>> status_name(0x80AB0400)  # info bits (here: a data value overflow) do not hide the name
    'BadInvalidArgument'
    >>> status_name(0x80FE0000)  # an unknown code keeps its number
    'Bad 0x80FE0000'
    >>> status_name(0x00000000)
    'Good'
    """
    if status is None:
        value = 0
    elif isinstance(status, int):
        value = status
    else:
        value = int(status.value)
    known = code_to_name_doc.get(value) or code_to_name_doc.get(value & 0xFFFF0000)
    if known is not None:
        return known[0]
    severity = ("Good", "Uncertain", "Bad", "Bad")[value >> 30 & 3]
    return f"{severity} 0x{value:08X}"


def quality_of(status: ua.StatusCode | None) -> Quality:
    """Quality from an OPC-UA StatusCode's severity bits.

    >>> quality_of(ua.StatusCode(0x00000000)).value
    'good'
    >>> quality_of(ua.StatusCode(0x40910000)).value  # UncertainEngineeringUnitsExceeded
    'uncertain'
    >>> quality_of(ua.StatusCode(0x808C0000)).value  # BadSensorFailure
    'bad'
    """
    code = 0 if status is None else int(status.value)
    severity = code >> 30
    if severity == 0:
        return Quality.GOOD
    if severity == 1:
        return Quality.UNCERTAIN
    return Quality.BAD


def source_time(value: datetime | None) -> datetime | None:
    """An OPC-UA timestamp as an aware UTC datetime; None for OPC-UA's "no timestamp".

    >>> source_time(datetime(1601, 1, 1)) is None
    True
    >>> source_time(datetime(2026, 1, 1)).isoformat()
    '2026-01-01T00:00:00+00:00'
    """
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if aware < _NO_TIME_BEFORE:
        return None
    try:
        return aware.astimezone(UTC)
    except OverflowError:  # the last day of year 9999 in a zone ahead of UTC
        return None


def _severity(quality: Quality) -> int:
    return {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2}[quality]


def _at_least_uncertain(quality: Quality) -> Quality:
    return max(quality, Quality.UNCERTAIN, key=_severity)


def _time_of(
    data: ua.DataValue, received_at: datetime, quality: Quality
) -> tuple[datetime, Quality]:
    source = source_time(data.SourceTimestamp)
    server = usable_time(source_time(data.ServerTimestamp))
    if usable_time(source) is not None:
        return source, quality  # type: ignore[return-value]  # checked just above
    if source is None and server is not None:
        return server, quality  # documented fallback: no source time, the server's time
    # No usable device time (an unset clock at 1900, or none at all).
    return server or received_at, _at_least_uncertain(quality)


def reading_of(
    sensor_id: str, data: ua.DataValue, received_at: datetime, unit_id: int = CELSIUS
) -> Reading | DeadLetter:
    """A notification's DataValue as a Reading in °C (see the module docstring for the rules).

    ``unit_id`` is the variable's EngineeringUnits UnitId (°C, °F or K).

    >>> t = datetime(2026, 3, 1, 12, tzinfo=UTC)
    >>> dv = ua.DataValue(ua.Variant(4.5), SourceTimestamp=datetime(1900, 1, 1))
    >>> r = reading_of("fridge-a/t", dv, t)
    >>> (r.value, r.quality.value, r.time == t)
    (4.5, 'uncertain', True)
    """
    quality = quality_of(data.StatusCode)
    when, quality = _time_of(data, received_at, quality)
    raw = None if data.Value is None else data.Value.Value
    value: float | None = None
    if quality is not Quality.BAD:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            reason = f"value is not a number: {type(raw).__name__} {str(raw)[:200]!r}"
            return dead_letter(sensor_id, reason, raw, received_at)
        value = TO_CELSIUS[unit_id](float(raw))
        if not math.isfinite(value):
            value, quality = None, Quality.BAD
    return Reading(
        sensor_id=sensor_id, time=when, value=value, quality=quality, received_at=received_at
    )


def record_of(
    sensor_id: str, data: ua.DataValue, received_at: datetime, unit_id: int = CELSIUS
) -> AnyRecord:
    """:func:`reading_of` that never raises: a value it cannot turn into a Reading (an integer
    too large for a float, a unit without conversion…) is a DeadLetter with the reason."""
    try:
        return reading_of(sensor_id, data, received_at, unit_id)
    except (ValidationError, ValueError, TypeError, OverflowError, KeyError) as err:
        return dead_letter(
            sensor_id, f"unusable value: {type(err).__name__}: {err}", data, received_at
        )


def dead_letter(sensor_id: str, reason: str, raw: object, received_at: datetime) -> DeadLetter:
    """The value's text kept with the reason (bounded), under ``opcua:<sensor>``."""
    return DeadLetter(
        source=f"opcua:{sensor_id}",
        reason=reason[:2000],
        raw=repr(raw).encode()[:_RAW_LIMIT],
        received_at=received_at,
    )


class RecentSamples:
    """The last few sample keys of one node: a sample seen again is not yielded twice."""

    def __init__(self) -> None:
        self._order: deque[tuple[object, ...]] = deque()
        self._keys: set[tuple[object, ...]] = set()

    def add(self, key: tuple[object, ...]) -> bool:
        """True when ``key`` is new (and remembers it)."""
        if key in self._keys:
            return False
        self._order.append(key)
        self._keys.add(key)
        if len(self._order) > _RECENT:
            self._keys.discard(self._order.popleft())
        return True


def sample_key(data: ua.DataValue) -> tuple[object, ...] | None:
    """What identifies a sample: its source timestamp (the server says it is the same
    measurement even if it re-reads the value), else its server timestamp and content. None
    when it carries no usable timestamp at all: such samples cannot be told apart from a
    repeat, so each is kept (at-least-once, as readings timed by receipt are)."""
    status = 0 if data.StatusCode is None else int(data.StatusCode.value)
    when = usable_time(source_time(data.SourceTimestamp))
    if when is not None:
        return (when, status)
    server = usable_time(source_time(data.ServerTimestamp))
    if server is not None:
        return ("server", server, status, repr(data.Value))
    return None


def usable_time(when: datetime | None) -> datetime | None:
    """``when`` if a record may carry it (1970 to 9999), else None: a clock that was never set
    (1900) is neither a device time nor, being the same on every sample, an identity.

    >>> usable_time(datetime(1900, 1, 1, tzinfo=UTC)) is None
    True
    """
    return when if when is not None and EARLIEST <= when <= LATEST else None
