"""The MQTT payload shapes, checked byte for byte against their device documentation."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from simulators.mqtt_loggers import (
    ChirpStackDevice,
    Malformed,
    MalformedKindError,
    chirpstack_uplink,
    corrupt,
    milesight_em300_th,
    plain_message,
    rfc3339,
    shelly_temperature,
    tasmota_sensor,
)
from simulators.site import Shape
from simulators.thermal import SensorSample, SensorStatus

T = datetime(2026, 11, 25, 8, 15, tzinfo=UTC)


def decode_em300(frame: bytes) -> dict[str, float]:
    """An independent reading of the Milesight channel table, for the round trip."""
    out: dict[str, float] = {}
    i = 0
    while i < len(frame):
        channel, kind = frame[i], frame[i + 1]
        if (channel, kind) == (0x01, 0x75):
            out["battery"] = frame[i + 2]
            i += 3
        elif (channel, kind) == (0x03, 0x67):
            out["temperature"] = int.from_bytes(frame[i + 2 : i + 4], "little", signed=True) / 10
            i += 4
        elif (channel, kind) == (0x04, 0x68):
            out["humidity"] = frame[i + 2] / 2
            i += 3
        else:
            raise ValueError(f"unknown channel {channel:#x} {kind:#x}")
    return out


def test_milesight_golden_vector_from_the_vendor_decoder_readme() -> None:
    # Milesight-IoT/SensorDecoders, EM300-TH README: 01755C 03673401 046865 -> 92 %, 30.8 °C, 50.5 %
    assert milesight_em300_th(30.8, 50.5, 92) == bytes.fromhex("01755C0367340104" + "6865")


@pytest.mark.parametrize("temperature", [-40.0, -20.3, -0.1, 0.0, 4.5, 8.1, 85.0])
def test_milesight_round_trips_negative_and_positive_temperatures(temperature: float) -> None:
    decoded = decode_em300(milesight_em300_th(temperature, 47.5, 80))
    assert decoded == {"battery": 80, "temperature": temperature, "humidity": 47.5}


def test_plain_shape() -> None:
    message = plain_message("site-1", "fridge-2.t", T, 4.3)
    assert message.topic == "coldtrace/site-1/fridge-2.t/reading"
    assert json.loads(message.payload) == {
        "sensor_id": "fridge-2.t",
        "time": "2026-11-25T08:15:00.000Z",
        "value": 4.3,
        "unit": "degC",
    }
    failed = json.loads(plain_message("site-1", "fridge-2.t", T, None, SensorStatus.BAD).payload)
    assert (failed["value"], failed["quality"]) == (None, "bad")
    out = plain_message("site-1", "fridge-2.t", T, 85.0, SensorStatus.UNCERTAIN)
    assert json.loads(out.payload)["quality"] == "uncertain"


def test_rfc3339_is_utc_with_z_whatever_the_input_zone() -> None:
    paris = T.astimezone(ZoneInfo("Europe/Paris"))
    assert rfc3339(paris) == "2026-11-25T08:15:00.000Z"


def test_chirpstack_v4_uplink_event() -> None:
    device = ChirpStackDevice(
        "24e124136b502217", "6f1c5d3e-0b8a-4c0e-9a7d-2f5b8e1c4a90", "freezer-1", f_cnt=41
    )
    frame = milesight_em300_th(-19.7, 45.0, 92)
    decoded = {"battery": 92, "temperature": -19.7, "humidity": 45.0}
    message = chirpstack_uplink(device, T, frame, decoded, rng_bits=12345 << 100)
    assert message.topic == (
        "application/6f1c5d3e-0b8a-4c0e-9a7d-2f5b8e1c4a90/device/24e124136b502217/event/up"
    )
    event = json.loads(message.payload)
    assert set(event) >= {
        "deduplicationId",
        "time",
        "deviceInfo",
        "devAddr",
        "fCnt",
        "fPort",
        "data",
        "object",
        "rxInfo",
        "txInfo",
    }
    assert event["deviceInfo"]["devEui"] == "24e124136b502217"
    assert event["deviceInfo"]["applicationId"] == device.application_id
    assert (event["fPort"], event["fCnt"]) == (85, 41)
    assert base64.b64decode(event["data"]) == frame
    assert decode_em300(base64.b64decode(event["data"])) == event["object"] == decoded
    assert datetime.fromisoformat(event["time"]) == T
    assert event["rxInfo"][0]["gatewayId"] == "0016c001f153a14c"
    assert event["deduplicationId"].count("-") == 4


def test_tasmota_time_is_local_without_offset() -> None:
    local = T.astimezone(ZoneInfo("Europe/Paris"))  # UTC+1 in November
    message = tasmota_sensor("tasmota_5C3F1A", local, "01191ED79247", 20.04)
    assert message.topic == "tele/tasmota_5C3F1A/SENSOR"
    assert json.loads(message.payload) == {
        "Time": "2026-11-25T09:15:00",
        "DS18B20": {"Id": "01191ED79247", "Temperature": 20.0},
        "TempUnit": "C",
    }


def test_shelly_status_object() -> None:
    good = shelly_temperature("shellyhtg3-84fce63ad204", SensorSample(T, 21.3, SensorStatus.GOOD))
    assert good.topic == "shellyhtg3-84fce63ad204/status/temperature:0"
    assert json.loads(good.payload) == {"id": 0, "tC": 21.3, "tF": 70.3}
    bad = shelly_temperature("s", SensorSample(T, None, SensorStatus.BAD))
    assert json.loads(bad.payload) == {"id": 0, "tC": None, "tF": None, "errors": ["read"]}
    out = shelly_temperature("s", SensorSample(T, 85.0, SensorStatus.UNCERTAIN))
    assert json.loads(out.payload)["errors"] == ["out_of_range"]


@pytest.mark.parametrize(
    ("shape", "payload"),
    [
        (Shape.PLAIN, plain_message("s", "x", T, 4.0).payload),
        (Shape.TASMOTA, tasmota_sensor("d", T, "01", 4.0).payload),
        (Shape.SHELLY, shelly_temperature("d", SensorSample(T, 4.0, SensorStatus.GOOD)).payload),
    ],
)
def test_malformations(shape: Shape, payload: bytes) -> None:
    with pytest.raises(UnicodeDecodeError):
        corrupt(shape, payload, Malformed.NOT_JSON).decode()
    with pytest.raises(json.JSONDecodeError):
        json.loads(corrupt(shape, payload, Malformed.TRUNCATED))
    wrong = corrupt(shape, payload, Malformed.WRONG_TYPE)
    assert b'"warm"' in wrong
    missing = json.loads(corrupt(shape, payload, Malformed.MISSING_VALUE))
    assert "4.0" not in json.dumps(missing)
    with pytest.raises(MalformedKindError):
        corrupt(shape, payload, Malformed.BAD_BASE64)


def test_chirpstack_specific_malformations() -> None:
    device = ChirpStackDevice("24e124136b502217", "app", "f")
    payload = chirpstack_uplink(device, T, milesight_em300_th(4.0, 40.0, 90), {}, 1).payload
    bad = json.loads(corrupt(Shape.CHIRPSTACK, payload, Malformed.BAD_BASE64))
    with pytest.raises(ValueError, match=r"base64|Incorrect|Invalid"):
        base64.b64decode(bad["data"], validate=True)
    assert "object" not in bad
    empty = json.loads(corrupt(Shape.CHIRPSTACK, payload, Malformed.MISSING_VALUE))
    assert "data" not in empty
    assert "object" not in empty
    short = json.loads(corrupt(Shape.CHIRPSTACK, payload, Malformed.SHORT_FRAME))
    frame = base64.b64decode(short["data"])
    assert frame.endswith(bytes([0x03, 0x67]))  # the temperature channel, without its 2 bytes
    assert "object" not in short
