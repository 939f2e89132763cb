"""Tasmota telemetry: ``tele/<device>/SENSOR``.

::

    {"Time": "2026-03-01T13:00:00", "DS18B20": {"Id": "01144A0CB2AA", "Temperature": 4.6},
     "SHT3X": {"Temperature": 4.8, "Humidity": 55.0, "DewPoint": -3.9}, "TempUnit": "C"}

Every top-level object with a ``Temperature`` is a sensor (DS18B20, DS18B20-1..n, SHT3X, AM2301,
BME280, ...); ``{sensor}`` in the sensor id template is its ``Id`` when it reports one (a
DS18B20's ROM code, stable when probes are added) and its key otherwise. Keys listed in
``ignore_sensors`` (the ESP32's own chip temperature by default) are skipped. ``TempUnit`` C or F
is required whenever a temperature is present: guessing °C for a °F device would invent an
excursion.

``Time`` is the device's LOCAL time without offset (unless ``SetOption52 1`` appends one), so the
spec's ``timezone`` turns it into UTC. A local time that is ambiguous or skipped at a daylight
saving change is read with its first offset and the reading is marked ``uncertain``. A time
before 2000 means the device has no NTP time yet (Tasmota counts from 1970 after boot): the
receipt time is used and the reading is marked ``uncertain``.

>>> from datetime import datetime, UTC
>>> from protocols.payloads.spec import DecoderSpec
>>> spec = DecoderSpec(topic="tele/{device}/SENSOR", format="tasmota",
...                    sensor_id="{device}/{sensor}", timezone="Europe/Paris")
>>> msg = Message("tele/fr-1/SENSOR",
...     b'{"Time":"2026-03-01T13:00:00","DS18B20":{"Temperature":41.0},"TempUnit":"F"}',
...     datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC))
>>> out = decode(msg, spec, {"device": "fr-1"}).readings
>>> [(r.sensor_id, r.time.isoformat(), r.value) for r in out]
[('fr-1/DS18B20', '2026-03-01T12:00:00+00:00', 5.0)]
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from protocols.payloads.common import (
    Decoded,
    Message,
    PayloadError,
    celsius,
    fahrenheit_to_celsius,
    number,
    relative_humidity,
    require_object,
    strict_json,
)
from protocols.payloads.spec import DecoderSpec, humidity_id, render_sensor_id
from protocols.records import Quality, Reading

_FIRST_SYNCED_YEAR = 2000


def decode(message: Message, spec: DecoderSpec, captures: dict[str, str]) -> Decoded:
    doc = require_object(strict_json(message.payload), "SENSOR payload")
    sensors = {
        key: value
        for key, value in doc.items()
        if isinstance(value, dict) and "Temperature" in value and key not in spec.ignore_sensors
    }
    if not sensors:
        raise PayloadError("no sensor with a Temperature in the SENSOR payload")
    unit = doc.get("TempUnit")
    if unit not in ("C", "F"):
        raise PayloadError(f"TempUnit must be 'C' or 'F', not {unit!r}")
    assert spec.zone is not None  # the spec refuses tasmota without a timezone
    time, quality = _device_time(doc.get("Time"), spec.zone, message.received_at)
    result = Decoded()
    for key, body in sensors.items():
        try:
            result.readings.extend(
                _sensor_readings(
                    key,
                    body,
                    fahrenheit=unit == "F",
                    time=time,
                    quality=quality,
                    message=message,
                    spec=spec,
                    captures=captures,
                )
            )
        except PayloadError as err:
            result.problems.append(f"sensor {key[:64]}: {err}")
    return result


def _device_time(raw: object, zone: ZoneInfo, received_at: datetime) -> tuple[datetime, Quality]:
    if not isinstance(raw, str) or len(raw) > 40:
        raise PayloadError(f"Time must be a local ISO 8601 string, not {raw!r}")
    try:
        local = datetime.fromisoformat(raw)
    except ValueError as err:
        raise PayloadError(f"Time is not an ISO 8601 time: {raw!r}") from err
    if local.year < _FIRST_SYNCED_YEAR:
        return received_at, Quality.UNCERTAIN
    if local.tzinfo is not None:
        return local.astimezone(UTC), Quality.GOOD
    first = local.replace(tzinfo=zone, fold=0)
    second = local.replace(tzinfo=zone, fold=1)
    quality = Quality.GOOD if first.utcoffset() == second.utcoffset() else Quality.UNCERTAIN
    return first.astimezone(UTC), quality


def _sensor_readings(
    key: str,
    body: dict[str, object],
    *,
    fahrenheit: bool,
    time: datetime,
    quality: Quality,
    message: Message,
    spec: DecoderSpec,
    captures: dict[str, str],
) -> list[Reading]:
    ident = body.get("Id")
    name = ident if isinstance(ident, str) and ident else key
    sensor_id = render_sensor_id(spec, {**captures, "sensor": name})
    value = number(body["Temperature"], "Temperature")
    value = celsius(fahrenheit_to_celsius(value) if fahrenheit else value, "Temperature")
    at = message.received_at
    readings = [
        Reading(sensor_id=sensor_id, time=time, value=value, quality=quality, received_at=at)
    ]
    rh_id = humidity_id(spec, sensor_id)
    if "Humidity" in body and rh_id is not None:
        humidity = relative_humidity(number(body["Humidity"], "Humidity"), "Humidity")
        readings.append(
            Reading(
                sensor_id=rh_id,
                time=time,
                value=humidity,
                unit="percentRH",
                quality=quality,
                received_at=at,
            )
        )
    return readings
