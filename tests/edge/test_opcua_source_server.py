"""The OPC-UA source against in-process asyncua servers: values, status, timestamps, security,
silence watchdog."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from asyncua import ua
from asyncua.ua.status_codes import StatusCodes

from coldtrace.devservices import free_port
from edge.sources.base import PermanentSourceError
from edge.sources.opcua import OpcUaSource, quality_of, reading_of
from protocols.records import DeadLetter, DeviceState, Quality, Reading
from tests.support.opcua_servers import (
    T0,
    UaTestServer,
    code,
    config,
    make_server,
    running_server,
    stamp,
)
from tests.support.temperature_sources import TEST_NAMESPACE, Collected, TcpPipe, wait_status

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def opcua_server() -> AsyncIterator[UaTestServer]:
    async with running_server() as test_server:
        yield test_server


async def readings_until(
    records: AsyncIterator[tuple[object, ...]], into: Collected, count: int, limit: float = 10
) -> list[Reading]:
    async with asyncio.timeout(limit):
        while len(into.readings) < count:
            into.records.extend(await anext(records))  # type: ignore[arg-type]
    return into.readings


async def test_values_status_and_timestamps_become_readings(opcua_server: UaTestServer) -> None:
    async with OpcUaSource(config(opcua_server.endpoint)) as source:
        records = aiter(source)
        got = Collected()
        online = await wait_status(records, got, DeviceState.ONLINE)
        assert (online.device_id, online.device_type) == ("plc-1", "opcua_server")
        await readings_until(records, got, 2)  # the initial values of both nodes
        got = Collected()
        await opcua_server.write("fridge-a", 4.5, T0)
        await readings_until(records, got, 1)
        await opcua_server.write(
            "fridge-a",
            9.9,
            T0 + timedelta(seconds=1),
            StatusCodes.UncertainEngineeringUnitsExceeded,
        )
        await readings_until(records, got, 2)
        await opcua_server.write(
            "fridge-b", None, T0 + timedelta(seconds=2), StatusCodes.BadSensorFailure
        )
        await readings_until(records, got, 3)
    assert [(r.sensor_id, r.time, r.value, r.quality) for r in got.readings] == [
        ("fridge-a/t", T0, 4.5, Quality.GOOD),
        ("fridge-a/t", T0 + timedelta(seconds=1), 9.9, Quality.UNCERTAIN),
        ("fridge-b/t", T0 + timedelta(seconds=2), None, Quality.BAD),
    ]
    assert all(r.received_at > T0 for r in got.readings)


async def test_server_timestamp_is_the_fallback(opcua_server: UaTestServer) -> None:
    async with OpcUaSource(config(opcua_server.endpoint)) as source:
        records = aiter(source)
        got = Collected()
        await readings_until(records, got, 2)
        got = Collected()
        await opcua_server.write("fridge-a", 5.0, None, server_time=T0)
        (reading,) = await readings_until(records, got, 1)
    assert (reading.time, reading.quality) == (T0, Quality.GOOD)


async def test_engineering_units_are_converted_or_refused(opcua_server: UaTestServer) -> None:
    nodes = {
        f"nsu={TEST_NAMESPACE};s={unit}.Temperature": f"{unit}/t"
        for unit in ("fridge-b", "fridge-f", "fridge-x")
    }
    async with OpcUaSource(config(opcua_server.endpoint, nodes=nodes)) as source:
        records = aiter(source)
        got = Collected()
        status = await wait_status(records, got, DeviceState.DEGRADED)
        await readings_until(records, got, 2)
        got = Collected()
        await opcua_server.write("fridge-f", 41.0, T0 + timedelta(days=1))
        await opcua_server.write("fridge-x", 55.0, T0 + timedelta(days=1))
        await opcua_server.write("fridge-b", 4.0, T0 + timedelta(days=1))
        await readings_until(records, got, 2)
    assert "fridge-x.Temperature (engineering unit P1 is not °C, °F or K)" in status.detail
    assert sorted((r.sensor_id, r.value) for r in got.readings) == [
        ("fridge-b/t", 4.0),
        ("fridge-f/t", 5.0),
    ]


def test_reading_without_any_timestamp_is_marked_uncertain() -> None:
    received = T0 + timedelta(minutes=5)
    data = ua.DataValue(Value=ua.Variant(4.0, ua.VariantType.Double))
    data.SourceTimestamp = None
    data.ServerTimestamp = None
    reading = reading_of("f/t", data, received)
    assert isinstance(reading, Reading)
    assert (reading.time, reading.quality, reading.value) == (received, Quality.UNCERTAIN, 4.0)


@pytest.mark.parametrize(
    ("value", "status", "expected"),
    [
        (float("nan"), StatusCodes.Good, (None, Quality.BAD)),
        (7, StatusCodes.Good, (7.0, Quality.GOOD)),
        (3.5, StatusCodes.BadCommunicationError, (None, Quality.BAD)),
        (3.5, StatusCodes.UncertainLastUsableValue, (3.5, Quality.UNCERTAIN)),
    ],
)
def test_reading_of_table(value: float, status: int, expected: tuple[object, Quality]) -> None:
    data = ua.DataValue(Value=ua.Variant(value), StatusCode=code(status), SourceTimestamp=stamp(T0))
    reading = reading_of("f/t", data, T0)
    assert isinstance(reading, Reading)
    assert (reading.value, reading.quality) == expected


def test_non_numeric_value_is_dead_lettered() -> None:
    data = ua.DataValue(Value=ua.Variant("hot"), SourceTimestamp=stamp(T0))
    letter = reading_of("f/t", data, T0)
    assert isinstance(letter, DeadLetter)
    assert "not a number" in letter.reason
    assert letter.raw == b"'hot'"


def test_quality_by_severity_bits() -> None:
    assert quality_of(None) is Quality.GOOD
    assert quality_of(code(StatusCodes.GoodClamped)) is Quality.GOOD
    assert quality_of(code(StatusCodes.UncertainSensorNotAccurate)) is Quality.UNCERTAIN
    assert quality_of(code(StatusCodes.BadOutOfService)) is Quality.BAD


async def test_silent_server_trips_the_watchdog_and_the_source_recovers(
    opcua_server: UaTestServer,
) -> None:
    async with TcpPipe(opcua_server.port) as pipe:
        endpoint = f"opc.tcp://127.0.0.1:{pipe.port}/"
        async with OpcUaSource(config(endpoint)) as source:
            records = aiter(source)
            got = Collected()
            await readings_until(records, got, 2)
            pipe.flowing.clear()  # the server hangs: no data, no keep-alive, socket still open
            frozen_at = asyncio.get_running_loop().time()
            offline = await wait_status(records, got, DeviceState.OFFLINE, limit=10)
            detected_after = asyncio.get_running_loop().time() - frozen_at
            pipe.flowing.set()
            await wait_status(records, got, DeviceState.ONLINE, limit=10)
            await opcua_server.write("fridge-a", 3.3, T0 + timedelta(hours=1))
            await readings_until(records, got, 3)
    assert detected_after < 5
    assert offline.detail
    assert got.readings[-1].value == 3.3
    values = [(r.sensor_id, r.time) for r in got.readings]
    assert len(values) == len(set(values)), "the reconnect repeated a reading"


async def test_missing_certificate_is_a_permanent_error(tmp_path: Path) -> None:
    cfg = config(
        "opc.tcp://127.0.0.1:1/",
        security={
            "mode": "Sign",
            "certificate": tmp_path / "no.pem",
            "private_key": tmp_path / "no.key",
        },
    )
    with pytest.raises(PermanentSourceError, match="cannot read"):
        async with OpcUaSource(cfg):
            pass


def test_config_refuses_a_watchdog_shorter_than_keepalives() -> None:
    with pytest.raises(ValueError, match="watchdog"):
        config("opc.tcp://h:4840/", watchdog=timedelta(milliseconds=100))
    with pytest.raises(ValueError, match=r"opc\.tcp"):
        config("http://h:4840/")
    with pytest.raises(ValueError, match="invalid NodeId"):
        config("opc.tcp://h:4840/", nodes={"nsu=urn:x": "a"})


@pytest.fixture(scope="module")
async def secure_server(pki: dict[str, Path]) -> AsyncIterator[UaTestServer]:
    server = await make_server(
        free_port(),
        [
            ua.SecurityPolicyType.Basic256Sha256_Sign,
            ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
        ],
        (pki["server_cert"], pki["server_key"]),
    )
    try:
        yield server
    finally:
        await server.server.stop()


@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
async def test_basic256sha256_with_client_certificate(
    pki: dict[str, Path], secure_server: UaTestServer, mode: str
) -> None:
    security = {
        "mode": mode,
        "certificate": pki["client_cert"],
        "private_key": pki["client_key"],
        "server_certificate": pki["server_cert"],
    }
    async with OpcUaSource(config(secure_server.endpoint, security=security)) as source:
        records = aiter(source)
        got = Collected()
        await readings_until(records, got, 2)
        await secure_server.write("fridge-b", -18.25, T0 + timedelta(hours=len(mode)))
        await readings_until(records, got, 3)
    assert (got.readings[-1].sensor_id, got.readings[-1].value) == ("fridge-b/t", -18.25)
    assert got.statuses[0].state is DeviceState.ONLINE


async def test_unsecured_client_is_refused_by_a_secure_only_server(
    secure_server: UaTestServer,
) -> None:
    async with OpcUaSource(config(secure_server.endpoint)) as source:
        with pytest.raises(PermanentSourceError, match="security mismatch"):
            await wait_status(aiter(source), Collected(), DeviceState.ONLINE, limit=5)


async def test_a_stalled_consumer_overflowing_the_handoff_is_reported(
    opcua_server: UaTestServer,
) -> None:
    cfg = config(opcua_server.endpoint, handoff_size=3)
    async with OpcUaSource(cfg) as source:
        records = aiter(source)
        got = Collected()
        await readings_until(records, got, 2)
        # The consumer stalls (does not ask for more) while the server keeps publishing.
        for i in range(40):
            await opcua_server.write("fridge-a", 4.0 + i / 100, T0 + timedelta(weeks=1, seconds=i))
        await asyncio.sleep(0.5)
        offline = await wait_status(records, got, DeviceState.OFFLINE)
        await wait_status(records, got, DeviceState.ONLINE)
    assert "values may have been missed" in offline.detail
    # What had reached the hand-off before it overflowed was still delivered, in order (the
    # server's own queue of 10 per node had already dropped the oldest of the 40 writes).
    first = got.readings[2].value
    assert first is not None
    assert [r.value for r in got.readings[2:5]] == pytest.approx(
        [first, first + 0.01, first + 0.02]
    )
