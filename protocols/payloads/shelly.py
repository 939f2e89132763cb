"""Shelly Gen2 temperature component status: ``<device id>/status/temperature:<n>``.

::

    {"id": 0, "tC": 4.6, "tF": 40.3}
    {"id": 0, "tC": null, "tF": null, "errors": ["read"]}

The status carries no device time, so the reading is timed by its receipt and gets the spec's
``receipt_time_quality`` (``uncertain`` by default: a message the broker held while the gateway
was offline arrives late, so its receipt time can be hours after the measurement). A retained
status is always ``uncertain``, whatever the spec says: it may be arbitrarily old. A sensor error
(``tC`` null with ``errors``) becomes a ``bad`` reading without a value, so a failed probe is
seen as such and never as a silent gap.

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

from protocols.payloads.common import (
    Decoded,
    Message,
    PayloadError,
    celsius,
    number,
    require_object,
    strict_json,
)
from protocols.payloads.spec import DecoderSpec, render_sensor_id
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
