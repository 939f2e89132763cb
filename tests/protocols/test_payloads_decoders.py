"""Table tests of every payload shape, good and malformed, through the router."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.payloads import DecoderSpec, PayloadRouter
from protocols.records import DeadLetter, Quality, Reading

RECEIVED = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)

ROUTER = PayloadRouter(
    [
        DecoderSpec(topic="coldtrace/{site}/readings", format="coldtrace-json"),
        DecoderSpec(topic="application/+/device/+/event/up", format="chirpstack-v4"),
        DecoderSpec(
            topic="tele/{device}/SENSOR",
            format="tasmota",
            sensor_id="{device}/{sensor}",
            timezone="Europe/Paris",
        ),
        DecoderSpec(
            topic="{device}/events/rpc",
            format="shelly-gen2-rpc",
            sensor_id="{src}/t{component_id}",
        ),
        DecoderSpec(
            topic="{device}/status/temperature:0",
            format="shelly-gen2",
            sensor_id="{device}/t{component_id}",
        ),
    ]
)


def decode(
    topic: str, payload: bytes | str | dict[str, object], retained: bool = False
) -> list[Reading | DeadLetter]:
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    return list(ROUTER.decode(topic, payload, RECEIVED, retained=retained))


def readings(records: list[Reading | DeadLetter]) -> list[tuple[str, str, float | None, str, str]]:
    return [
        (r.sensor_id, r.time.isoformat(), r.value, r.unit, r.quality.value)
        for r in records
        if isinstance(r, Reading)
    ]


def dead(records: list[Reading | DeadLetter]) -> list[DeadLetter]:
    return [r for r in records if isinstance(r, DeadLetter)]


# ---------------------------------------------------------------- coldtrace JSON

CT = "coldtrace/site-1/readings"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"sensor_id": "f1/t", "time": "2026-03-01T12:00:00Z", "value": 4.5, "unit": "degC"},
            [("f1/t", "2026-03-01T12:00:00+00:00", 4.5, "degC", "good")],
        ),
        (
            {"sensor_id": "f1/t", "time": "2026-03-01T13:00:00.5+01:00", "value": 5, "unit": "°C"},
            [("f1/t", "2026-03-01T12:00:00.500000+00:00", 5.0, "degC", "good")],
        ),
        (
            {"sensor_id": "f1/t", "time": "2026-03-01T12:00:00Z", "value": 32, "unit": "F"},
            [("f1/t", "2026-03-01T12:00:00+00:00", 0.0, "degC", "good")],
        ),
        (
            {"sensor_id": "f1/rh", "time": "2026-03-01T12:00:00Z", "value": 45, "unit": "%RH"},
            [("f1/rh", "2026-03-01T12:00:00+00:00", 45.0, "percentRH", "good")],
        ),
        (
            {
                "sensor_id": "f1/t",
                "time": "2026-03-01T12:00:00Z",
                "value": None,
                "unit": "degC",
                "quality": "bad",
            },
            [("f1/t", "2026-03-01T12:00:00+00:00", None, "degC", "bad")],
        ),
    ],
)
def test_coldtrace_json_good(payload: dict[str, object], expected: list[object]) -> None:
    out = decode(CT, payload)
    assert readings(out) == expected
    assert dead(out) == []
    assert all(isinstance(r, Reading) and r.received_at == RECEIVED for r in out)


def test_coldtrace_json_array_keeps_good_items_and_dead_letters_the_bad_one() -> None:
    items = [
        {"sensor_id": "f1/t", "time": f"2026-03-01T12:0{i}:00Z", "value": 4.0 + i, "unit": "degC"}
        for i in range(3)
    ]
    items[1]["value"] = "warm"
    out = decode(CT, json.dumps(items))
    assert [r[2] for r in readings(out)] == [4.0, 6.0]
    (letter,) = dead(out)
    assert "item 1" in letter.reason
    assert "value must be a number" in letter.reason
    assert letter.raw == json.dumps(items).encode()


GOOD = {"sensor_id": "f1/t", "time": "2026-03-01T12:00:00Z", "value": 4.5, "unit": "degC"}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (
            b'{"sensor_id": "f1/t", "time": "2026-03-01T12:00:00Z", "value": NaN, "unit": "degC"}',
            "NaN is not allowed",
        ),
        (
            b'{"sensor_id": "f1/t", "time": "2026-03-01T12:00Z", "value": 1e400, "unit": "C"}',
            "not finite",
        ),
        (
            b'{"sensor_id": "f1/t", "time": "2026-03-01T12:00Z", "value": -Infinity, "unit": "C"}',
            "-Infinity is not allowed",
        ),
        ({**GOOD, "value": "4.5"}, "value must be a number, not a string"),
        ({**GOOD, "value": True}, "value must be a number, not a boolean"),
        ({**GOOD, "value": None}, "null but quality is not 'bad'"),
        ({**GOOD, "value": -300}, "not a plausible temperature"),
        ({**GOOD, "time": "2026-03-01T12:00:00"}, "no UTC offset"),
        ({**GOOD, "time": "yesterday"}, "not an RFC 3339"),
        ({**GOOD, "time": 1772366400}, "must be an RFC 3339 string"),
        ({**GOOD, "unit": "K"}, "unit must be one of"),
        ({**GOOD, "quality": "great"}, "quality must be"),
        ({**GOOD, "sensor_id": "has space"}, "not a valid id"),
        ({**GOOD, "sensor_id": 7}, "sensor_id must be a string"),
        ({**GOOD, "extra": 1}, "unknown field(s) extra"),
        ({"sensor_id": "f1/t", "value": 4.5}, "missing field(s) time, unit"),
        (b"[]", "expected 1-1000 readings"),
        (b"42", "payload must be a JSON object"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b"", "not valid JSON"),
    ],
)
def test_coldtrace_json_malformed_is_dead_lettered(
    payload: bytes | dict[str, object], reason: str
) -> None:
    out = decode(CT, payload)
    (letter,) = out
    assert isinstance(letter, DeadLetter)
    assert reason in letter.reason
    assert letter.source == f"mqtt:{CT}"
    assert letter.raw == (payload if isinstance(payload, bytes) else json.dumps(payload).encode())


def test_huge_payload_is_dead_lettered_with_its_head_kept() -> None:
    payload = b'{"pad": "' + b"x" * 200_000 + b'"}'
    (letter,) = decode(CT, payload)
    assert isinstance(letter, DeadLetter)
    assert "200011 bytes exceeds the 65536-byte limit" in letter.reason
    assert letter.raw == payload[:65536]


def test_unrouted_topic_is_dead_lettered() -> None:
    (letter,) = decode("somewhere/else", b"{}")
    assert isinstance(letter, DeadLetter)
    assert letter.reason == "no decoder is configured for this topic"


# ---------------------------------------------------------------- ChirpStack v4

EUI = "24e124136b502217"
UP = f"application/5e8f1c2a-0000-4000-8000-000000000001/device/{EUI}/event/up"


def chirpstack_event(**fields: object) -> dict[str, object]:
    event: dict[str, object] = {
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": "2026-03-01T11:59:58.761245513+00:00",
        "deviceInfo": {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
            "tenantName": "ChirpStack",
            "applicationId": "5e8f1c2a-0000-4000-8000-000000000001",
            "applicationName": "cold-room",
            "deviceProfileId": "1c0ba4a6-5c68-4f1b-8f56-1e7a4c2d3e4f",
            "deviceProfileName": "Milesight EM300-TH",
            "deviceName": "fridge-2",
            "devEui": EUI,
            "tags": {},
        },
        "devAddr": "01fb2a9c",
        "adr": True,
        "dr": 5,
        "fCnt": 1042,
        "fPort": 85,
        "confirmed": False,
        "rxInfo": [{"gatewayId": "0016c001ff10a235", "rssi": -57, "snr": 9.5}],
        "txInfo": {"frequency": 868100000, "modulation": {"lora": {"bandwidth": 125000}}},
    }
    event.update(fields)
    return event


def b64(hex_bytes: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_bytes)).decode()


LIVE_TIME = "2026-03-01T11:59:58.761245+00:00"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (  # vendor example frame: battery 92 %, 30.8 °C, 50.5 %RH
            chirpstack_event(data=b64("01755C03673401046865")),
            [
                (EUI, LIVE_TIME, 30.8, "degC", "good"),
                (EUI + "/rh", LIVE_TIME, 50.5, "percentRH", "good"),
            ],
        ),
        (  # fridge at 4.6 °C, negative freezer at -18.5 °C
            chirpstack_event(data=b64("03672E00")),
            [(EUI, LIVE_TIME, 4.6, "degC", "good")],
        ),
        (
            chirpstack_event(data=b64("0367" + (-185 & 0xFFFF).to_bytes(2, "little").hex())),
            [(EUI, LIVE_TIME, -18.5, "degC", "good")],
        ),
        (  # history record (vendor example) carries the device's own time
            chirpstack_event(data=b64("20CE9E74466310015D00")),
            [
                (EUI, "2022-10-12T08:02:38+00:00", 27.2, "degC", "good"),
                (EUI + "/rh", "2022-10-12T08:02:38+00:00", 46.5, "percentRH", "good"),
            ],
        ),
        (  # codec-decoded object wins over data
            chirpstack_event(
                data=b64("03673401"), object={"battery": 92, "temperature": 5.1, "humidity": 40}
            ),
            [
                (EUI, LIVE_TIME, 5.1, "degC", "good"),
                (EUI + "/rh", LIVE_TIME, 40.0, "percentRH", "good"),
            ],
        ),
        (
            chirpstack_event(object={"history": [{"timestamp": 1772366400, "temperature": 3.9}]}),
            [(EUI, "2026-03-01T12:00:00+00:00", 3.9, "degC", "good")],
        ),
        (  # device information after join: nothing to record, nothing wrong
            chirpstack_event(data=b64("FF0BFFFF0101FF166136B19260730003FF090140FF0A0114FF0F00")),
            [],
        ),
    ],
)
def test_chirpstack_good(event: dict[str, object], expected: list[object]) -> None:
    out = decode(UP, event)
    assert readings(out) == expected
    assert dead(out) == []


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (chirpstack_event(time=None, data=b64("03672E00")), "event time must be an RFC 3339"),
        (chirpstack_event(data="***"), "'data' is not base64"),
        (chirpstack_event(data=None), "neither 'object' nor base64 'data'"),
        (chirpstack_event(data=b64("0367")), "truncated"),
        (chirpstack_event(data=b64("03672E")), "truncated"),
        (chirpstack_event(data=b64("0599AA")), "unknown channel 0x05 type 0x99"),
        (chirpstack_event(data=b64("036710F5")), "not a plausible temperature"),
        (chirpstack_event(object={"temp": 4.5}), "object has no 'temperature'"),
        (chirpstack_event(object={"temperature": "4.5"}), "temperature must be a number"),
        (chirpstack_event(object=[1, 2]), "object must be a JSON object"),
        (chirpstack_event(deviceInfo={"devEui": "xyz"}, data=b64("03672E00")), "16 hex digits"),
        (chirpstack_event(deviceInfo=None), "deviceInfo must be a JSON object"),
        (chirpstack_event(data=b64("01755C")), "carries no temperature"),
    ],
)
def test_chirpstack_malformed(event: dict[str, object], reason: str) -> None:
    out = decode(UP, event)
    assert readings(out) == []
    (letter,) = dead(out)
    assert reason in letter.reason


def test_chirpstack_history_with_a_bad_point_keeps_the_others() -> None:
    obj = {"history": [{"timestamp": 1772366400, "temperature": 3.9}, {"timestamp": 1e20}]}
    out = decode(UP, chirpstack_event(object=obj))
    assert [r[2] for r in readings(out)] == [3.9]
    assert "out of range" in dead(out)[0].reason


# ---------------------------------------------------------------- Tasmota

TELE = "tele/fridge-3/SENSOR"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (  # winter, Paris is UTC+1
            '{"Time":"2026-01-15T09:30:00","DS18B20":{"Id":"01144A0CB2AA","Temperature":4.6},'
            '"TempUnit":"C"}',
            [("fridge-3/01144A0CB2AA", "2026-01-15T08:30:00+00:00", 4.6, "degC", "good")],
        ),
        (  # summer, UTC+2; two probes keyed by their ROM ids
            '{"Time":"2026-07-15T09:30:00","DS18B20-1":{"Id":"3C01D607A1B2","Temperature":3.9},'
            '"DS18B20-2":{"Id":"3C01D607C3D4","Temperature":-19.6},"TempUnit":"C"}',
            [
                ("fridge-3/3C01D607A1B2", "2026-07-15T07:30:00+00:00", 3.9, "degC", "good"),
                ("fridge-3/3C01D607C3D4", "2026-07-15T07:30:00+00:00", -19.6, "degC", "good"),
            ],
        ),
        (
            '{"Time":"2026-01-15T09:30:00","SHT3X":{"Temperature":5.2,"Humidity":61.3,'
            '"DewPoint":-1.5},"TempUnit":"C"}',
            [
                ("fridge-3/SHT3X", "2026-01-15T08:30:00+00:00", 5.2, "degC", "good"),
                ("fridge-3/SHT3X/rh", "2026-01-15T08:30:00+00:00", 61.3, "percentRH", "good"),
            ],
        ),
        (  # °F device, ESP32 chip temperature ignored
            '{"Time":"2026-01-15T09:30:00","ESP32":{"Temperature":51.1},"AM2301":'
            '{"Temperature":39.2,"Humidity":50.0,"DewPoint":21.1},"TempUnit":"F"}',
            [
                ("fridge-3/AM2301", "2026-01-15T08:30:00+00:00", 4.0, "degC", "good"),
                ("fridge-3/AM2301/rh", "2026-01-15T08:30:00+00:00", 50.0, "percentRH", "good"),
            ],
        ),
        (  # SetOption52: explicit offset is used as sent
            '{"Time":"2026-01-15T09:30:00+05:30","DS18B20":{"Temperature":4.0},"TempUnit":"C"}',
            [("fridge-3/DS18B20", "2026-01-15T04:00:00+00:00", 4.0, "degC", "good")],
        ),
        (  # 2026-10-25 02:30 happens twice in Paris: first offset, marked uncertain
            '{"Time":"2026-10-25T02:30:00","DS18B20":{"Temperature":4.0},"TempUnit":"C"}',
            [("fridge-3/DS18B20", "2026-10-25T00:30:00+00:00", 4.0, "degC", "uncertain")],
        ),
        (  # 2026-03-29 02:30 does not exist in Paris
            '{"Time":"2026-03-29T02:30:00","DS18B20":{"Temperature":4.0},"TempUnit":"C"}',
            [("fridge-3/DS18B20", "2026-03-29T01:30:00+00:00", 4.0, "degC", "uncertain")],
        ),
        (  # no NTP yet: receipt time, uncertain
            '{"Time":"1970-01-01T00:00:42","DS18B20":{"Temperature":4.0},"TempUnit":"C"}',
            [("fridge-3/DS18B20", RECEIVED.isoformat(), 4.0, "degC", "uncertain")],
        ),
    ],
)
def test_tasmota_good(payload: str, expected: list[object]) -> None:
    out = decode(TELE, payload)
    assert readings(out) == expected
    assert dead(out) == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ('{"Time":"2026-01-15T09:30:00","DS18B20":{"Temperature":4.6}}', "TempUnit must be"),
        (
            '{"Time":"2026-01-15T09:30:00","DS18B20":{"Temperature":4.6},"TempUnit":"K"}',
            "TempUnit must be",
        ),
        ('{"DS18B20":{"Temperature":4.6},"TempUnit":"C"}', "Time must be"),
        ('{"Time":"noon","DS18B20":{"Temperature":4.6},"TempUnit":"C"}', "not an ISO 8601"),
        ('{"Time":"2026-01-15T09:30:00","ENERGY":{"Power":12}}', "no sensor with a Temperature"),
        (
            '{"Time":"2026-01-15T09:30:00","DS18B20":{"Temperature":null},"TempUnit":"C"}',
            "sensor DS18B20: Temperature must be a number, not null",
        ),
        (
            '{"Time":"2026-01-15T09:30:00","SHT3X":{"Temperature":4,"Humidity":140},"TempUnit":"C"}',
            "outside 0-100",
        ),
    ],
)
def test_tasmota_malformed(payload: str, reason: str) -> None:
    out = decode(TELE, payload)
    assert readings(out) == []
    (letter,) = dead(out)
    assert reason in letter.reason


def test_tasmota_one_broken_probe_does_not_hide_the_other() -> None:
    payload = (
        '{"Time":"2026-01-15T09:30:00","DS18B20-1":{"Id":"AA","Temperature":4.1},'
        '"DS18B20-2":{"Id":"BB","Temperature":"err"},"TempUnit":"C"}'
    )
    out = decode(TELE, payload)
    assert [r[0] for r in readings(out)] == ["fridge-3/AA"]
    assert "sensor DS18B20-2" in dead(out)[0].reason


# ---------------------------------------------------------------- Shelly Gen2

SHELLY = "shellyplusht-08b61fcb7f3c/status/temperature:0"


def test_shelly_reading_is_timed_by_receipt_and_marked_uncertain() -> None:
    out = decode(SHELLY, '{"id":0,"tC":4.6,"tF":40.3}')
    assert readings(out) == [
        ("shellyplusht-08b61fcb7f3c/t0", RECEIVED.isoformat(), 4.6, "degC", "uncertain")
    ]


def test_shelly_quality_can_be_configured_but_retained_is_always_uncertain() -> None:
    router = PayloadRouter(
        [
            DecoderSpec(
                topic="{device}/status/temperature:0",
                format="shelly-gen2",
                sensor_id="{device}",
                receipt_time_quality=Quality.GOOD,
            )
        ]
    )
    (live,) = router.decode(SHELLY, b'{"id":0,"tC":4.6}', RECEIVED)
    (old,) = router.decode(SHELLY, b'{"id":0,"tC":4.6}', RECEIVED, retained=True)
    assert isinstance(live, Reading)
    assert isinstance(old, Reading)
    assert (live.quality, old.quality) == (Quality.GOOD, Quality.UNCERTAIN)


def test_shelly_sensor_error_is_a_bad_reading() -> None:
    out = decode(SHELLY, '{"id":0,"tC":null,"tF":null,"errors":["read"]}')
    assert readings(out) == [
        ("shellyplusht-08b61fcb7f3c/t0", RECEIVED.isoformat(), None, "degC", "bad")
    ]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ('{"id":0,"tF":40.3}', "missing field tC"),
        ('{"id":0,"tC":null}', "without an 'errors' list"),
        ('{"id":"0","tC":4.6}', "id must be a component number"),
        ('{"id":0,"tC":"4.6"}', "tC must be a number"),
        ('{"id":0,"tC":4000}', "not a plausible temperature"),
    ],
)
def test_shelly_malformed(payload: str, reason: str) -> None:
    (letter,) = decode(SHELLY, payload)
    assert isinstance(letter, DeadLetter)
    assert reason in letter.reason


# ---------------------------------------------------------------- Shelly Gen2 RPC

RPC = "shellyhtg3-84fce63ad204/events/rpc"


def rpc(method: str = "NotifyStatus", /, **params: object) -> dict[str, object]:
    return {
        "src": "shellyhtg3-84fce63ad204",
        "dst": "shellyhtg3-84fce63ad204/events",
        "method": method,
        "params": params,
    }


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (
            rpc(ts=1772366400.25, **{"temperature:0": {"id": 0, "tC": 4.2, "tF": 39.6}}),
            [
                (
                    "shellyhtg3-84fce63ad204/t0",
                    "2026-03-01T12:00:00.250000+00:00",
                    4.2,
                    "degC",
                    "good",
                )
            ],
        ),
        (  # H&T Gen3 full status: temperature and humidity, other components ignored
            rpc(
                "NotifyFullStatus",
                ts=1772366400,
                sys={"uptime": 12},
                **{"temperature:0": {"id": 0, "tC": 5.0}, "humidity:0": {"id": 0, "rh": 61.5}},
            ),
            [
                ("shellyhtg3-84fce63ad204/t0", "2026-03-01T12:00:00+00:00", 5.0, "degC", "good"),
                (
                    "shellyhtg3-84fce63ad204/t0/rh",
                    "2026-03-01T12:00:00+00:00",
                    61.5,
                    "percentRH",
                    "good",
                ),
            ],
        ),
        (  # add-on with two probes, one failed
            rpc(
                ts=1772366400,
                **{
                    "temperature:100": {"id": 100, "tC": -19.5},
                    "temperature:101": {"id": 101, "tC": None, "errors": ["read"]},
                },
            ),
            [
                (
                    "shellyhtg3-84fce63ad204/t100",
                    "2026-03-01T12:00:00+00:00",
                    -19.5,
                    "degC",
                    "good",
                ),
                ("shellyhtg3-84fce63ad204/t101", "2026-03-01T12:00:00+00:00", None, "degC", "bad"),
            ],
        ),
        (  # no ts: receipt time, uncertain
            rpc(**{"temperature:0": {"id": 0, "tC": 4.0}}),
            [("shellyhtg3-84fce63ad204/t0", RECEIVED.isoformat(), 4.0, "degC", "uncertain")],
        ),
        (  # clock not set yet
            rpc(ts=12.5, **{"temperature:0": {"id": 0, "tC": 4.0}}),
            [("shellyhtg3-84fce63ad204/t0", RECEIVED.isoformat(), 4.0, "degC", "uncertain")],
        ),
        (rpc("NotifyEvent", ts=1772366400, events=[{"event": "btn_down"}]), []),
        (rpc(ts=1772366400, **{"temperature:0": {"id": 0, "errors": ["read"]}}), []),
    ],
)
def test_shelly_rpc_good(frame: dict[str, object], expected: list[object]) -> None:
    out = decode(RPC, frame)
    assert readings(out) == expected
    assert dead(out) == []


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (rpc(ts="now", **{"temperature:0": {"tC": 4}}), "params.ts must be a number"),
        (rpc(ts=1e30, **{"temperature:0": {"tC": 4}}), "out of range"),
        ({"method": "NotifyStatus", "params": {}}, "src must be the device id"),
        (
            rpc(ts=1772366400, **{"temperature:0": {"tC": "4"}}),
            "temperature:0: tC must be a number",
        ),
        ({**rpc(), "params": [1]}, "params must be a JSON object"),
    ],
)
def test_shelly_rpc_malformed(frame: dict[str, object], reason: str) -> None:
    out = decode(RPC, frame)
    assert readings(out) == []
    (letter,) = dead(out)
    assert reason in letter.reason


# ---------------------------------------------------------------- nothing escapes

TOPICS = [CT, UP, TELE, SHELLY, RPC, "unrouted"]


@settings(max_examples=300, deadline=None)
@given(topic=st.sampled_from(TOPICS), payload=st.binary(max_size=300))
def test_random_bytes_never_raise(topic: str, payload: bytes) -> None:
    for record in ROUTER.decode(topic, payload, RECEIVED):
        assert isinstance(record, Reading | DeadLetter)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "sensor_id",
                    "time",
                    "value",
                    "unit",
                    "tC",
                    "id",
                    "errors",
                    "Time",
                    "TempUnit",
                    "DS18B20",
                    "Temperature",
                    "Humidity",
                    "Id",
                    "object",
                    "data",
                    "deviceInfo",
                    "devEui",
                    "history",
                    "timestamp",
                    "temperature",
                    "quality",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(topic=st.sampled_from(TOPICS), document=json_values)
def test_random_json_never_raises(topic: str, document: object) -> None:
    payload = json.dumps(document).encode()
    out = ROUTER.decode(topic, payload, RECEIVED)
    assert out or topic == RPC  # RPC frames that carry no temperature give nothing
    for record in out:
        if isinstance(record, DeadLetter):
            assert record.raw == payload
        else:
            assert record.received_at == RECEIVED
            assert record.time <= RECEIVED + timedelta(days=365 * 1000)


@settings(max_examples=300, deadline=None)
@given(frame=st.binary(max_size=64))
def test_random_lorawan_frames_never_raise(frame: bytes) -> None:
    event = chirpstack_event(data=base64.b64encode(frame).decode())
    for record in decode(UP, event):
        assert isinstance(record, Reading | DeadLetter)
        if isinstance(record, Reading) and record.unit == "degC":
            assert record.value is not None
            assert -273.15 <= record.value <= 1000
