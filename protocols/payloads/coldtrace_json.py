"""coldtrace's own JSON shape for loggers we program ourselves.

One object, or an array of up to 1,000 objects (a logger flushing its backlog)::

    {"sensor_id": "fridge-1/t", "time": "2026-03-01T12:00:00.5Z", "value": 4.7, "unit": "degC"}

``time`` is RFC 3339 with an offset (device time, kept as sent). ``unit`` is ``degC`` (also
``C``/``°C``), ``degF`` (``F``/``°F``, converted to °C) or ``percentRH`` (``%RH``). An optional
``quality`` is ``good``, ``uncertain`` or ``bad``; ``value`` may be null only when it is ``bad``.

>>> from datetime import datetime, UTC
>>> from protocols.payloads.spec import DecoderSpec
>>> spec = DecoderSpec(topic="coldtrace/{site}/readings", format="coldtrace-json")
>>> msg = Message("coldtrace/s1/readings",
...     b'{"sensor_id": "f1/t", "time": "2026-03-01T12:00:00Z", "value": 41, "unit": "degF"}',
...     datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC))
>>> [(r.sensor_id, r.value, r.unit) for r in decode(msg, spec, {"site": "s1"}).readings]
[('f1/t', 5.0, 'degC')]
"""

from __future__ import annotations

from typing import Literal

from protocols.payloads.common import (
    Decoded,
    Message,
    PayloadError,
    celsius,
    fahrenheit_to_celsius,
    number,
    relative_humidity,
    require_object,
    rfc3339,
    strict_json,
)
from protocols.payloads.spec import DecoderSpec, render_sensor_id
from protocols.records import Quality, Reading

MAX_ITEMS = 1000
_UNITS: dict[str, Literal["degC", "degF", "percentRH"]] = {
    "degC": "degC",
    "C": "degC",
    "°C": "degC",
    "degF": "degF",
    "F": "degF",
    "°F": "degF",
    "percentRH": "percentRH",
    "%RH": "percentRH",
}
_FIELDS = {"sensor_id", "time", "value", "unit", "quality"}


def decode(message: Message, spec: DecoderSpec, captures: dict[str, str]) -> Decoded:
    document = strict_json(message.payload)
    items = document if isinstance(document, list) else [document]
    if not items or len(items) > MAX_ITEMS:
        raise PayloadError(f"expected 1-{MAX_ITEMS} readings, got {len(items)}")
    result = Decoded()
    for index, item in enumerate(items):
        where = f"item {index}" if isinstance(document, list) else "payload"
        try:
            result.readings.append(_reading(item, where, message, spec, captures))
        except PayloadError as err:
            result.problems.append(f"{where}: {err}")
    return result


def _reading(
    item: object, where: str, message: Message, spec: DecoderSpec, captures: dict[str, str]
) -> Reading:
    obj = require_object(item, where)
    missing = sorted({"sensor_id", "time", "value", "unit"} - obj.keys())
    if missing:
        raise PayloadError(f"missing field(s) {', '.join(missing)}")
    extra = sorted(obj.keys() - _FIELDS)
    if extra:
        raise PayloadError(f"unknown field(s) {', '.join(extra)}")
    raw_id = obj["sensor_id"]
    if not isinstance(raw_id, str):
        raise PayloadError("sensor_id must be a string")
    unit = _UNITS.get(obj["unit"]) if isinstance(obj["unit"], str) else None
    if unit is None:
        raise PayloadError(f"unit must be one of {sorted(_UNITS)}, not {obj['unit']!r}")
    quality = _quality(obj.get("quality", "good"))
    value = _value(obj["value"], unit, quality)
    return Reading(
        sensor_id=render_sensor_id(spec, {**captures, "sensor_id": raw_id}),
        time=rfc3339(obj["time"], "time"),
        value=value,
        unit="percentRH" if unit == "percentRH" else "degC",
        quality=quality,
        received_at=message.received_at,
    )


def _quality(raw: object) -> Quality:
    for quality in Quality:
        if raw == quality.value:
            return quality
    raise PayloadError(f"quality must be good, uncertain or bad, not {raw!r}")


def _value(raw: object, unit: str, quality: Quality) -> float | None:
    if raw is None:
        if quality is not Quality.BAD:
            raise PayloadError("value is null but quality is not 'bad'")
        return None
    value = number(raw, "value")
    if unit == "percentRH":
        return relative_humidity(value, "value")
    if unit == "degF":
        value = fahrenheit_to_celsius(value)
    return celsius(value, "value")
