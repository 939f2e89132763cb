"""ChirpStack v4 uplink events (MQTT integration, JSON marshaler).

Topic ``application/<application id>/device/<dev eui>/event/up``. The event's ``time`` (RFC 3339,
set by ChirpStack when the uplink was received) is the reading time of a live frame. When the
device profile has a codec, ``object`` holds its result and ``object_temperature`` /
``object_humidity`` name its fields (a ``history`` array of ``{timestamp, temperature,
humidity}`` is read too); otherwise ``data`` (base64 FRMPayload) is decoded as a Milesight
EM300-TH frame. History records carry the device's own Unix time.

>>> import base64
>>> from datetime import datetime, UTC
>>> from protocols.payloads.spec import DecoderSpec
>>> spec = DecoderSpec(topic="application/+/device/+/event/up", format="chirpstack-v4")
>>> event = ('{"time": "2026-03-01T12:00:00.250+00:00", "deviceInfo": {"devEui": '
...          '"24e124136b502217", "deviceName": "fridge-2"}, "fPort": 85, "data": "'
...          + base64.b64encode(bytes.fromhex("01755C03672E00046865")).decode() + '"}')
>>> msg = Message("application/1/device/24e124136b502217/event/up", event.encode(),
...               datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC))
>>> [(r.sensor_id, r.value, r.unit) for r in decode(msg, spec, {}).readings]
[('24e124136b502217', 4.6, 'degC'), ('24e124136b502217/rh', 50.5, 'percentRH')]
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime

from protocols.payloads.common import (
    Decoded,
    Message,
    PayloadError,
    celsius,
    number,
    relative_humidity,
    require_object,
    rfc3339,
    strict_json,
)
from protocols.payloads.milesight import decode_em300_th
from protocols.payloads.spec import DecoderSpec, humidity_id, render_sensor_id
from protocols.records import Reading

_DEV_EUI = re.compile(r"^[0-9a-fA-F]{16}$")
_MAX_HISTORY = 1000


def decode(message: Message, spec: DecoderSpec, captures: dict[str, str]) -> Decoded:
    event = require_object(strict_json(message.payload), "uplink event")
    time = rfc3339(event.get("time"), "event time")
    info = require_object(event.get("deviceInfo"), "deviceInfo")
    dev_eui = info.get("devEui")
    if not isinstance(dev_eui, str) or not _DEV_EUI.fullmatch(dev_eui):
        raise PayloadError(f"deviceInfo.devEui must be 16 hex digits, not {dev_eui!r}")
    name = info.get("deviceName", "")
    variables = {**captures, "dev_eui": dev_eui.lower(), "device_name": str(name)}
    sensor_id = render_sensor_id(spec, variables)
    points = _points_from_object(event, spec) if "object" in event else _points_from_data(event)
    if points is None:
        return Decoded()
    temperature, humidity, history = points
    result = Decoded()
    _add(result, spec, sensor_id, time, temperature=temperature, humidity=humidity, message=message)
    for stamp, temp, hum in history:
        try:
            when = _unix(stamp)
        except PayloadError as err:
            result.problems.append(str(err))
            continue
        _add(result, spec, sensor_id, when, temperature=temp, humidity=hum, message=message)
    if not result.readings and not result.problems:
        raise PayloadError("uplink carries no temperature")
    return result


_Points = tuple[float | None, float | None, list[tuple[float, float | None, float | None]]]


def _points_from_data(event: dict[str, object]) -> _Points | None:
    data = event.get("data")
    if not isinstance(data, str) or not data:
        raise PayloadError("uplink has neither 'object' nor base64 'data'")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as err:
        raise PayloadError(f"'data' is not base64: {err}") from err
    frame = decode_em300_th(raw)
    if frame.info_only:
        return None
    history: list[tuple[float, float | None, float | None]] = [
        (float(s), t, h) for s, t, h in frame.history
    ]
    return frame.temperature, frame.humidity, history


def _points_from_object(event: dict[str, object], spec: DecoderSpec) -> _Points:
    obj = require_object(event["object"], "object")
    temperature = _optional_number(obj, spec.object_temperature)
    humidity = _optional_number(obj, spec.object_humidity)
    raw_history = obj.get("history", [])
    if not isinstance(raw_history, list) or len(raw_history) > _MAX_HISTORY:
        raise PayloadError(f"object.history must be an array of at most {_MAX_HISTORY} items")
    history: list[tuple[float, float | None, float | None]] = []
    for index, item in enumerate(raw_history):
        point = require_object(item, f"object.history[{index}]")
        stamp = number(point.get("timestamp"), f"object.history[{index}].timestamp")
        history.append(
            (
                stamp,
                _optional_number(point, spec.object_temperature),
                _optional_number(point, spec.object_humidity),
            )
        )
    if temperature is None and humidity is None and not history:
        raise PayloadError(f"object has no '{spec.object_temperature}' (keys: {sorted(obj)[:20]})")
    return temperature, humidity, history


def _optional_number(obj: dict[str, object], key: str) -> float | None:
    return None if key not in obj else number(obj[key], key)


def _unix(stamp: float) -> datetime:
    try:
        return datetime.fromtimestamp(stamp, UTC)
    except (OverflowError, OSError, ValueError) as err:
        raise PayloadError(f"history timestamp {stamp} is out of range") from err


def _add(
    result: Decoded,
    spec: DecoderSpec,
    sensor_id: str,
    time: datetime,
    *,
    temperature: float | None,
    humidity: float | None,
    message: Message,
) -> None:
    try:
        if temperature is not None:
            result.readings.append(
                Reading(
                    sensor_id=sensor_id,
                    time=time,
                    value=celsius(temperature, "temperature"),
                    received_at=message.received_at,
                )
            )
        rh_id = humidity_id(spec, sensor_id)
        if humidity is not None and rh_id is not None:
            result.readings.append(
                Reading(
                    sensor_id=rh_id,
                    time=time,
                    value=relative_humidity(humidity, "humidity"),
                    unit="percentRH",
                    received_at=message.received_at,
                )
            )
    except PayloadError as err:
        result.problems.append(f"reading at {time.isoformat()}: {err}")
