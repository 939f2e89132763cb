"""Contract: what the simulated loggers publish is what the edge's payload decoders read.

The decoders (``protocols.payloads``) were written apart from the simulators, each from the
device documentation; this checks that both readings agree, shape by shape.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from protocols.payloads import DecoderSpec, PayloadRouter
from protocols.records import DeadLetter, Quality, Reading
from simulators.mqtt_loggers import (
    ChirpStackDevice,
    Malformed,
    Message,
    chirpstack_uplink,
    corrupt,
    milesight_em300_th,
    plain_message,
    shelly_temperature,
    tasmota_sensor,
)
from simulators.site import Shape
from simulators.thermal import SensorSample, SensorStatus

T = datetime(2026, 11, 25, 8, 15, tzinfo=UTC)
RECEIVED = T + timedelta(seconds=2)
ROUTER = PayloadRouter(
    [
        DecoderSpec(topic="coldtrace/+/+/reading", format="coldtrace-json"),
        DecoderSpec(topic="application/+/device/+/event/up", format="chirpstack-v4"),
        DecoderSpec(
            topic="tele/{device}/SENSOR",
            format="tasmota",
            sensor_id="{device}",
            timezone="Europe/Paris",
        ),
        DecoderSpec(
            topic="{device}/status/temperature:0", format="shelly-gen2", sensor_id="{device}"
        ),
    ]
)
DEVICE = ChirpStackDevice("24e124136b502217", "6f1c5d3e-0b8a-4c0e-9a7d-2f5b8e1c4a90", "freezer-1")


def chirp(value: float) -> Message:
    frame = milesight_em300_th(value, 45.0, 92)
    decoded = {"battery": 92, "temperature": value, "humidity": 45.0}
    return chirpstack_uplink(DEVICE, T, frame, decoded, rng_bits=7)


GOOD: dict[Shape, tuple[Message, str]] = {
    Shape.PLAIN: (plain_message("site-1", "fridge-2.t", T, 4.3), "fridge-2.t"),
    Shape.CHIRPSTACK: (chirp(-19.7), "24e124136b502217"),
    Shape.TASMOTA: (
        tasmota_sensor("tasmota_5C3F1A", T.astimezone(ZoneInfo("Europe/Paris")), "01", 20.04),
        "tasmota_5C3F1A",
    ),
    Shape.SHELLY: (
        shelly_temperature("shellyhtg3-84fce63ad204", SensorSample(T, 21.3, SensorStatus.GOOD)),
        "shellyhtg3-84fce63ad204",
    ),
}


def readings(message: Message) -> list[Reading]:
    out = ROUTER.decode(message.topic, message.payload, RECEIVED)
    assert all(isinstance(r, Reading) for r in out), out
    return [r for r in out if isinstance(r, Reading) and r.unit == "degC"]


@pytest.mark.parametrize("shape", list(Shape))
def test_good_payloads_decode_to_the_simulated_reading(shape: Shape) -> None:
    message, sensor_id = GOOD[shape]
    (reading,) = readings(message)
    assert reading.sensor_id == sensor_id
    expected_value = {Shape.PLAIN: 4.3, Shape.CHIRPSTACK: -19.7, Shape.TASMOTA: 20.0}
    assert reading.value == expected_value.get(shape, 21.3)
    if shape is Shape.SHELLY:
        assert reading.time == RECEIVED  # Shelly sends no time: receipt is all there is
    else:
        assert reading.time == T  # device time kept, Tasmota's local time resolved to UTC
        assert reading.quality is Quality.GOOD


def test_failed_probes_decode_as_bad_readings() -> None:
    plain = plain_message("site-1", "fridge-2.t", T, None, SensorStatus.BAD)
    shelly = shelly_temperature("shellyhtg3-84fce63ad204", SensorSample(T, None, SensorStatus.BAD))
    for message in (plain, shelly):
        (reading,) = readings(message)
        assert (reading.value, reading.quality) == (None, Quality.BAD)


_CHIRPSTACK_ONLY = {Malformed.BAD_BASE64, Malformed.SHORT_FRAME}
CASES = [
    (shape, kind)
    for shape in Shape
    for kind in Malformed
    if shape is Shape.CHIRPSTACK or kind not in _CHIRPSTACK_ONLY
]


@pytest.mark.parametrize(("shape", "kind"), CASES)
def test_every_malformation_becomes_a_dead_letter(shape: Shape, kind: Malformed) -> None:
    message, _ = GOOD[shape]
    broken = corrupt(shape, message.payload, kind)
    out = ROUTER.decode(message.topic, broken, RECEIVED)
    assert len(out) == 1
    assert isinstance(out[0], DeadLetter)
    assert out[0].raw == broken
