"""Shelly Gen2 temperature: component status, and RPC status notifications.

**Status** (``shelly-gen2``): ``<device id>/status/temperature:<n>``.

::

    {"id": 0, "tC": 4.6, "tF": 40.3}
    {"id": 0, "tC": null, "tF": null, "errors": ["read"]}

The status carries no device time, so the reading is timed by its receipt and gets the spec's
``receipt_time_quality`` (``uncertain`` by default: a message the broker held while the gateway
was offline arrives late, so its receipt time can be hours after the measurement). A retained
status is always ``uncertain``, whatever the spec says: it may be arbitrarily old. A sensor error
(``tC`` null with ``errors``) becomes a ``bad`` reading without a value, so a failed probe is
seen as such and never as a silent gap.

**RPC notifications** (``shelly-gen2-rpc``): ``<device id>/events/rpc``, sent when "RPC status
notifications over MQTT" is on. ``NotifyStatus`` and ``NotifyFullStatus`` carry
``params.ts``, the device's own Unix time (SNTP-synchronised), and components keyed
``temperature:<n>`` (``tC``) and ``humidity:<n>`` (``rh``)::

    {"src": "shellyhtg3-84fce63ad204", "method": "NotifyStatus",
     "params": {"ts": 1772366400.12, "temperature:0": {"id": 0, "tC": 4.2, "tF": 39.6}}}

Readings take ``ts`` as their time and quality ``good``; without ``ts`` (or with one before
2000: the device has no time yet) they fall back to receipt time as above. Other methods
(``NotifyEvent``) and components carry no temperature and give no record. ``{src}`` and
``{component_id}`` are the sensor id variables.

>>> from datetime import datetime, UTC
>>> from protocols.payloads.spec import DecoderSpec
>>> spec = DecoderSpec(topic="{device}/status/temperature:0", format="shelly-gen2",
...                    sensor_id="{device}")
>>> msg = Message("shellyplusht-a1/status/temperature:0", b'{"id":0,"tC":4.6,"tF":40.3}',
...               datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
>>> r = decode(msg, spec, {"device": "shellyplusht-a1"}).readings[0]
>>> (r.sensor_id, r.value, r.quality.value, r.time == r.received_at)
('shellyplusht-a1', 4.6, 'uncertain', True)
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from protocols.payloads.common import (
    Decoded,
    Message,
    PayloadError,
    celsius,
    number,
    relative_humidity,
    require_object,
    strict_json,
)
from protocols.payloads.spec import DecoderSpec, humidity_id, render_sensor_id
from protocols.records import Quality, Reading


def decode(message: Message, spec: DecoderSpec, captures: dict[str, str]) -> Decoded:
    status = require_object(strict_json(message.payload), "temperature status")
    component = status.get("id")
    if isinstance(component, bool) or not isinstance(component, int) or component < 0:
        raise PayloadError(f"id must be a component number, not {component!r}")
    sensor_id = render_sensor_id(spec, {**captures, "component_id": str(component)})
    quality = Quality.UNCERTAIN if message.retained else spec.receipt_time_quality
    if "tC" not in status:
        raise PayloadError("missing field tC")
    raw = status["tC"]
    if raw is None:
        errors = status.get("errors")
        if not isinstance(errors, list) or not errors:
            raise PayloadError("tC is null without an 'errors' list")
        return Decoded(
            readings=[
                Reading(
                    sensor_id=sensor_id,
                    time=message.received_at,
                    value=None,
                    quality=Quality.BAD,
                    received_at=message.received_at,
                )
            ]
        )
    value = celsius(number(raw, "tC"), "tC")
    return Decoded(
        readings=[
            Reading(
                sensor_id=sensor_id,
                time=message.received_at,
                value=value,
                quality=quality,
                received_at=message.received_at,
            )
        ]
    )


_COMPONENT = re.compile(r"^(temperature|humidity):(\d{1,3})$")
_FIRST_SYNCED = datetime(2000, 1, 1, tzinfo=UTC)


def decode_rpc(message: Message, spec: DecoderSpec, captures: dict[str, str]) -> Decoded:
    """``NotifyStatus`` / ``NotifyFullStatus`` frames; see the module docstring.

    >>> from protocols.payloads.spec import DecoderSpec
    >>> spec = DecoderSpec(topic="{device}/events/rpc", format="shelly-gen2-rpc",
    ...                    sensor_id="{src}/t{component_id}")
    >>> msg = Message("sh-1/events/rpc", b'{"src": "sh-1", "method": "NotifyStatus", "params": '
    ...     b'{"ts": 1772366400.5, "temperature:0": {"id": 0, "tC": 4.2}}}',
    ...     datetime(2026, 3, 1, 12, 0, 3, tzinfo=UTC))
    >>> [(r.sensor_id, r.time.isoformat(), r.value, r.quality.value)
    ...  for r in decode_rpc(msg, spec, {"device": "sh-1"}).readings]
    [('sh-1/t0', '2026-03-01T12:00:00.500000+00:00', 4.2, 'good')]
    """
    frame = require_object(strict_json(message.payload), "RPC frame")
    if frame.get("method") not in ("NotifyStatus", "NotifyFullStatus"):
        return Decoded()
    params = require_object(frame.get("params"), "params")
    src = frame.get("src")
    if not isinstance(src, str) or not src:
        raise PayloadError("src must be the device id")
    time, quality = _rpc_time(params.get("ts"), message, spec)
    result = Decoded()
    for key, body in params.items():
        match = _COMPONENT.match(key)
        if match is None or not isinstance(body, dict):
            continue
        kind, index = match.groups()
        try:
            variables = {**captures, "src": src, "component_id": index}
            reading = _component_reading(
                kind,
                body,
                variables=variables,
                time=time,
                quality=quality,
                message=message,
                spec=spec,
            )
        except PayloadError as err:
            result.problems.append(f"{key}: {err}")
            continue
        if reading is not None:
            result.readings.append(reading)
    return result


def _rpc_time(raw: object, message: Message, spec: DecoderSpec) -> tuple[datetime, Quality]:
    if raw is None:
        return message.received_at, spec.receipt_time_quality
    seconds = number(raw, "params.ts")
    try:
        time = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as err:
        raise PayloadError(f"params.ts {seconds} is out of range") from err
    if time < _FIRST_SYNCED:
        return message.received_at, Quality.UNCERTAIN
    return time, Quality.GOOD


def _component_reading(
    kind: str,
    body: dict[str, object],
    *,
    variables: dict[str, str],
    time: datetime,
    quality: Quality,
    message: Message,
    spec: DecoderSpec,
) -> Reading | None:
    field = "tC" if kind == "temperature" else "rh"
    if field not in body:
        return None  # a partial status without the value (only errors changed, ...)
    sensor_id = render_sensor_id(spec, variables)
    unit: Literal["degC", "percentRH"] = "degC"
    if kind == "humidity":
        rh_id = humidity_id(spec, sensor_id)
        if rh_id is None:
            return None
        sensor_id, unit = rh_id, "percentRH"
    raw = body[field]
    if raw is None:
        if not body.get("errors"):
            raise PayloadError(f"{field} is null without an 'errors' list")
        return Reading(
            sensor_id=sensor_id,
            time=time,
            value=None,
            unit=unit,
            quality=Quality.BAD,
            received_at=message.received_at,
        )
    value = number(raw, field)
    value = celsius(value, field) if unit == "degC" else relative_humidity(value, field)
    return Reading(
        sensor_id=sensor_id,
        time=time,
        value=value,
        unit=unit,
        quality=quality,
        received_at=message.received_at,
    )
