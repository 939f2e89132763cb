"""The MQTT source against the private Mosquitto: shapes, dead letters, acks, persistent session."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError

from edge.sources.base import PermanentSourceError
from edge.sources.mqtt import MqttSource, MqttSourceConfig
from protocols.records import DeviceState, Quality
from tests.support.temperature_sources import (
    Collected,
    apublish,
    collect_until,
    index_of,
    json_reading,
    mqtt_config,
    settle,
    wait_status,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix() -> str:
    return f"ct-{uuid.uuid4().hex[:10]}"


async def test_messages_published_right_after_a_first_start_are_not_missed(
    mqtt_url: str, prefix: str
) -> None:
    async with MqttSource(mqtt_config(mqtt_url, prefix)) as source:
        # No waiting for the online status: entering means subscribed.
        await apublish(mqtt_url, [(f"{prefix}/s/readings", json_reading(i)) for i in range(5)])
        got = await collect_until(aiter(source), Collected(), readings=5)
    assert [index_of(r) for r in got.readings] == list(range(5))


async def test_every_shape_arrives_and_malformed_payloads_are_dead_lettered(
    mqtt_url: str, prefix: str
) -> None:
    em300 = base64.b64encode(bytes.fromhex("01755C03672E00046865")).decode()
    messages: list[tuple[str, bytes | str]] = [
        (f"{prefix}/site-1/readings", json_reading(1)),
        (f"{prefix}/site-1/readings", b"{broken"),
        (
            f"{prefix}/tele/fridge-3/SENSOR",
            '{"Time":"2026-01-15T09:30:00","DS18B20":{"Id":"01144A0CB2AA","Temperature":4.6},'
            '"TempUnit":"C"}',
        ),
        (f"{prefix}/site-1/readings", b"\xff\xfe\x00"),
        (
            f"{prefix}/application/1/device/24e124136b502217/event/up",
            '{"time": "2026-03-01T12:00:00Z", "deviceInfo": {"devEui": "24e124136b502217"},'
            f' "fPort": 85, "data": "{em300}"}}',
        ),
        (f"{prefix}/shellyplusht-1/status/temperature:0", '{"id":0,"tC":5.5,"tF":41.9}'),
        (f"{prefix}/site-1/readings", '{"sensor_id": "fridge-1/t", "value": NaN}'),
        (f"{prefix}/site-1/readings", json_reading(2)),
    ]
    got = Collected()
    async with MqttSource(mqtt_config(mqtt_url, prefix)) as source:
        records = aiter(source)
        online = await wait_status(records, Collected(), DeviceState.ONLINE)
        assert online.device_id == "broker-1"
        assert online.device_type == "mqtt_broker"
        await apublish(mqtt_url, messages)
        await collect_until(records, got, readings=6)
    assert [(r.sensor_id, r.value) for r in got.readings] == [
        ("fridge-1/t", 4.0001),
        ("fridge-3/01144A0CB2AA", 4.6),
        ("24e124136b502217", 4.6),
        ("24e124136b502217/rh", 50.5),
        ("shellyplusht-1", 5.5),
        ("fridge-1/t", 4.0002),
    ]
    assert got.readings[4].quality is Quality.UNCERTAIN
    assert [d.raw for d in got.dead_letters] == [
        b"{broken",
        b"\xff\xfe\x00",
        b'{"sensor_id": "fridge-1/t", "value": NaN}',
    ]
    reasons = " | ".join(d.reason for d in got.dead_letters)
    assert "not valid JSON" in reasons
    assert "not UTF-8" in reasons
    assert "NaN is not allowed" in reasons
    assert all(d.source.startswith(f"mqtt:{prefix}/site-1/readings") for d in got.dead_letters)


async def test_record_is_not_acked_when_the_consumer_does_not_resume(
    mqtt_url: str, prefix: str
) -> None:
    config = mqtt_config(mqtt_url, prefix)
    async with MqttSource(config) as source:
        records = aiter(source)
        await wait_status(records, Collected(), DeviceState.ONLINE)
        await apublish(mqtt_url, [(f"{prefix}/s/readings", json_reading(i)) for i in (1, 2)])
        first = Collected()
        await collect_until(records, first, readings=1)
        # The consumer "crashes" before committing: it never asks for the next tuple.
        await records.aclose()  # type: ignore[attr-defined]
    assert [index_of(r) for r in first.readings] == [1]

    again = Collected()
    async with MqttSource(config) as source:
        await collect_until(aiter(source), again, readings=2)
    assert [index_of(r) for r in again.readings] == [1, 2]
    assert all(r.received_at >= first.readings[0].received_at for r in again.readings)


async def test_persistent_session_delivers_what_was_published_while_away(
    mqtt_url: str, prefix: str
) -> None:
    config = mqtt_config(mqtt_url, prefix)
    async with MqttSource(config) as source:
        records = aiter(source)
        await wait_status(records, Collected(), DeviceState.ONLINE)
        await apublish(mqtt_url, [(f"{prefix}/s/readings", json_reading(0))])
        await collect_until(records, Collected(), readings=1)
        await settle(records)
    # The gateway is down; loggers keep publishing.
    await apublish(mqtt_url, [(f"{prefix}/s/readings", json_reading(i)) for i in range(1, 51)])
    got = Collected()
    async with MqttSource(config) as source:
        records = aiter(source)
        await collect_until(records, got, readings=50)
        await settle(records)
    assert [index_of(r) for r in got.readings] == list(range(1, 51))


async def test_small_handoff_applies_back_pressure_without_losing_anything(
    mqtt_url: str, prefix: str
) -> None:
    config = mqtt_config(mqtt_url, prefix, in_flight=2)
    async with MqttSource(config) as source:
        records = aiter(source)
        await wait_status(records, Collected(), DeviceState.ONLINE)
        await apublish(mqtt_url, [(f"{prefix}/s/readings", json_reading(i)) for i in range(300)])
        got = await collect_until(records, Collected(), readings=300, limit=20)
        await settle(records)
    assert [index_of(r) for r in got.readings] == list(range(300))


async def test_retained_shelly_status_is_uncertain(mqtt_url: str, prefix: str) -> None:
    topic = f"{prefix}/shelly-ret/status/temperature:0"
    await apublish(mqtt_url, [(topic, '{"id":0,"tC":4.2}')], retain=True)
    config = mqtt_config(
        mqtt_url,
        prefix,
        decoders=(
            {
                "topic": f"{prefix}/{{device}}/status/temperature:0",
                "format": "shelly-gen2",
                "sensor_id": "{device}",
                "receipt_time_quality": "good",
            },
        ),
    )
    try:
        async with MqttSource(config) as source:
            got = await collect_until(aiter(source), Collected(), readings=1)
        assert [(r.sensor_id, r.value, r.quality) for r in got.readings] == [
            ("shelly-ret", 4.2, Quality.UNCERTAIN)
        ]
    finally:
        await apublish(mqtt_url, [(topic, b"")], retain=True)  # clears the retained message


async def test_unreachable_broker_is_reported_offline_and_retried(prefix: str) -> None:
    from coldtrace.devservices import free_port

    config = mqtt_config(
        f"mqtt://127.0.0.1:{free_port()}", prefix, connect_timeout=timedelta(milliseconds=300)
    )
    started = asyncio.get_running_loop().time()
    async with MqttSource(config) as source:
        # Entering does not wait for an unreachable broker longer than the connect timeout.
        assert asyncio.get_running_loop().time() - started < 2
        status = await wait_status(aiter(source), Collected(), DeviceState.OFFLINE, limit=5)
    assert "cannot connect" in status.detail


def test_config_refuses_nonsense() -> None:
    with pytest.raises(ValidationError, match="broker_url"):
        mqtt_config("http://127.0.0.1:1", "x")
    with pytest.raises(ValidationError, match="session_expiry"):
        mqtt_config("mqtt://127.0.0.1:1", "x", session_expiry=timedelta(0))
    with pytest.raises(ValidationError, match="backoff_max"):
        mqtt_config("mqtt://127.0.0.1:1", "x", backoff_max=timedelta(milliseconds=1))
    with pytest.raises(ValidationError, match="decoders"):
        MqttSourceConfig(broker_url="mqtt://h:1", client_id="c", decoders=())


def test_permanent_error_type_is_exported() -> None:
    assert issubclass(PermanentSourceError, Exception)
