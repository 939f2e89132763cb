"""The OPC-UA source's failure modes, each a status or a dead letter, never a dead source:
an unreachable server with SignAndEncrypt (also at first start), bad values, an unknown
namespace, a refused certificate, and values published during a reconnect (HistoryRead)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto.permission_rules import User
from asyncua.server.internal_server import InternalServer
from asyncua.server.server import Server
from asyncua.server.user_managers import UserManager
from hypothesis import given, settings
from hypothesis import strategies as st

from coldtrace.devservices import free_port
from edge.sources.base import PermanentSourceError
from edge.sources.opcua import OpcUaSource
from edge.sources.opcua_history import read_raw
from edge.sources.opcua_values import record_of, status_name
from protocols.records import DeadLetter, DeviceState, Quality, Reading, Record
from tests.support.opcua_servers import T0, UaTestServer, config, make_server, stamp
from tests.support.temperature_sources import TEST_NAMESPACE, Collected, TcpPipe, wait_status

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def until(
    records: AsyncIterator[tuple[Record, ...]],
    into: Collected,
    done: object,
    limit: float = 10,
) -> None:
    """Consumes tuples until ``done(into)`` is true."""
    async with asyncio.timeout(limit):
        while not done(into):  # type: ignore[operator]
            into.records.extend(await anext(records))


@pytest.fixture(scope="module")
async def opcua_server() -> AsyncIterator[UaTestServer]:
    server = await make_server(free_port(), history=("fridge-a",))
    try:
        yield server
    finally:
        await server.server.stop()


# ------------------------------------------------------------------ one bad value


@pytest.mark.parametrize(
    ("source_time", "server_time", "expected_time", "quality"),
    [
        (datetime(1900, 1, 1, tzinfo=UTC), None, NOW, Quality.UNCERTAIN),  # NTP epoch: unset
        (datetime(1969, 12, 31, 23, 59, tzinfo=UTC), T0, T0, Quality.UNCERTAIN),
        (datetime(9999, 12, 31, tzinfo=UTC), None, NOW, Quality.UNCERTAIN),
        (None, datetime(1900, 1, 1, tzinfo=UTC), NOW, Quality.UNCERTAIN),
        (None, T0, T0, Quality.GOOD),
        (T0, datetime(1900, 1, 1, tzinfo=UTC), T0, Quality.GOOD),
    ],
)
def test_an_unusable_device_time_falls_back_and_is_marked(
    source_time: datetime | None,
    server_time: datetime | None,
    expected_time: datetime,
    quality: Quality,
) -> None:
    data = ua.DataValue(
        Value=ua.Variant(4.5),
        SourceTimestamp=None if source_time is None else stamp(source_time),
        ServerTimestamp=None if server_time is None else stamp(server_time),
    )
    record = record_of("fridge-a/t", data, NOW)
    assert isinstance(record, Reading)
    assert (record.time, record.value, record.quality) == (expected_time, 4.5, quality)


_VALUES = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.text(max_size=20),
    st.lists(st.floats(), min_size=1, max_size=3),
)
_TIMES = st.one_of(st.none(), st.datetimes(min_value=datetime(1601, 1, 1)))


@settings(max_examples=300, deadline=None)
@given(
    value=_VALUES,
    source=_TIMES,
    server=_TIMES,
    status=st.integers(min_value=0, max_value=2**32 - 1),
    unit=st.sampled_from([0x434546, 0x464148, 0x4B454C, 0x434547]),
)
def test_record_of_never_raises(
    value: object, source: datetime | None, server: datetime | None, status: int, unit: int
) -> None:
    data = ua.DataValue(
        Value=ua.Variant(value),
        StatusCode=ua.StatusCode(ua.UInt32(status)),
        SourceTimestamp=None if source is None else stamp(source),
        ServerTimestamp=None if server is None else stamp(server),
    )
    record = record_of("fridge-a/t", data, NOW, unit)
    assert isinstance(record, Reading | DeadLetter)


async def test_bad_values_cost_only_themselves(opcua_server: UaTestServer) -> None:
    async with OpcUaSource(config(opcua_server.endpoint)) as source:
        records = aiter(source)
        got = Collected()
        await wait_status(records, got, DeviceState.ONLINE)
        await until(records, got, lambda c: len(c.readings) >= 2)  # initial values
        got = Collected()
        start = datetime.now(UTC)
        await opcua_server.write("fridge-a", 3.0, datetime(1900, 1, 1, tzinfo=UTC))
        await opcua_server.write("fridge-a", 3.1, datetime(1900, 1, 1, tzinfo=UTC))
        await opcua_server.write("fridge-b", 5.5, T0 + timedelta(seconds=1))
        await opcua_server.write("fridge-a", float("nan"), T0 + timedelta(seconds=2))
        await opcua_server.write("fridge-a", 4.0, T0 + timedelta(seconds=3))
        await until(records, got, lambda c: len(c.readings) >= 5)
    fridge_a = [r for r in got.readings if r.sensor_id == "fridge-a/t"]
    fridge_b = [r for r in got.readings if r.sensor_id == "fridge-b/t"]
    assert [(r.value, r.quality) for r in fridge_a] == [
        (3.0, Quality.UNCERTAIN),
        (3.1, Quality.UNCERTAIN),  # the same unset clock is not the same sample
        (None, Quality.BAD),
        (4.0, Quality.GOOD),
    ]
    assert fridge_a[0].time >= start  # receipt time, never 1900
    assert [(r.value, r.time) for r in fridge_b] == [(5.5, T0 + timedelta(seconds=1))]
    assert not [s for s in got.statuses if s.state is DeviceState.OFFLINE]


# ------------------------------------------------------------------ one bad node


async def test_an_unknown_namespace_degrades_only_its_node(opcua_server: UaTestServer) -> None:
    nodes = {
        f"nsu={TEST_NAMESPACE};s=fridge-b.Temperature": "fridge-b/t",
        "nsu=urn:nobody:has:this;s=fridge-b.Temperature": "ghost/t",
        f"nsu={TEST_NAMESPACE};s=no-such-node": "missing/t",
    }
    async with OpcUaSource(config(opcua_server.endpoint, nodes=nodes)) as source:
        records = aiter(source)
        got = Collected()
        degraded = await wait_status(records, got, DeviceState.DEGRADED)
        await until(records, got, lambda c: len(c.readings) >= 1)
        await opcua_server.write("fridge-b", 6.5, T0 + timedelta(minutes=5))
        await until(records, got, lambda c: any(r.value == 6.5 for r in c.readings))
    assert "urn:nobody:has:this" in degraded.detail
    assert "BadNodeIdUnknown" in degraded.detail
    assert {r.sensor_id for r in got.readings} == {"fridge-b/t"}


# ------------------------------------------------------------------ unreachable, refused


async def test_sign_and_encrypt_without_a_pinned_certificate_waits_for_the_server(
    pki: dict[str, Path],
) -> None:
    """The server is down at first start: the source reports it and connects once it is up."""
    port = free_port()
    security = {
        "mode": "SignAndEncrypt",
        "certificate": pki["client_cert"],
        "private_key": pki["client_key"],
    }
    cfg = config(f"opc.tcp://127.0.0.1:{port}/", security=security)
    async with OpcUaSource(cfg) as source:
        records = aiter(source)
        got = Collected()
        offline = await wait_status(records, got, DeviceState.OFFLINE)
        await asyncio.sleep(0.5)  # several reconnect attempts against nothing
        server = await make_server(
            port,
            [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt],
            (pki["server_cert"], pki["server_key"]),
        )
        try:
            await wait_status(records, got, DeviceState.ONLINE, limit=15)
            await until(records, got, lambda c: len(c.readings) >= 2)
        finally:
            await server.server.stop()
    assert "Connection" in offline.detail or "refused" in offline.detail.lower()


def test_status_codes_are_named() -> None:
    assert status_name(ua.StatusCode(ua.UInt32(2148270080))) == "BadShutdown"
    assert status_name(0x80130000) == "BadSecurityChecksFailed"
    assert status_name(None) == "Good"


class _NobodyMayEnter(UserManager):
    """Refuses every user (asyncua answers BadUserAccessDenied)."""

    def get_user(
        self,
        iserver: InternalServer,
        username: str | None = None,
        password: str | None = None,
        certificate: object = None,
    ) -> User | None:
        return None


async def test_a_refused_identity_is_permanent_with_a_status_saying_what_to_do() -> None:
    port = free_port()
    server = Server(user_manager=_NobodyMayEnter())
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    await server.start()
    got = Collected()
    try:
        cfg = config(f"opc.tcp://127.0.0.1:{port}/", username="nobody", password="wrong")
        async with OpcUaSource(cfg) as source:
            with pytest.raises(PermanentSourceError, match="identity"):
                await until(aiter(source), got, lambda _c: False)
    finally:
        await server.stop()
    (status,) = got.statuses
    assert status.state is DeviceState.OFFLINE
    assert "BadUserAccessDenied" in status.detail
    assert "check username and password" in status.detail


# ------------------------------------------------------------------ values during a reconnect


async def test_values_published_during_an_outage_are_read_back(
    opcua_server: UaTestServer,
) -> None:
    """fridge-a keeps history: every value written while the network was cut arrives once.
    fridge-b does not: its gap is recorded as a no-data interval with the reason, from when
    the connection stopped delivering (fridge-b's value last changed an hour before)."""
    steady_since = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    await opcua_server.write("fridge-b", 6.0, steady_since)
    async with TcpPipe(opcua_server.port) as pipe:
        cfg = config(f"opc.tcp://127.0.0.1:{pipe.port}/")
        async with OpcUaSource(cfg) as source:
            records = aiter(source)
            got = Collected()
            await until(records, got, lambda c: len(c.readings) >= 2)
            base = datetime.now(UTC).replace(microsecond=0)
            for i in range(3):
                await opcua_server.write("fridge-a", 100.0 + i, base + timedelta(seconds=i))
            await until(records, got, lambda c: any(r.value == 102.0 for r in c.readings))
            await asyncio.sleep(0.5)  # fridge-b steady, keep-alives arriving
            cut_at = datetime.now(UTC)
            pipe.cut()
            await wait_status(records, got, DeviceState.OFFLINE)
            for i in range(3, 23):  # published while the gateway is away
                await opcua_server.write("fridge-a", 100.0 + i, base + timedelta(seconds=i))
            await opcua_server.write("fridge-b", 7.0, base + timedelta(seconds=5))
            pipe.accepting = True
            await until(records, got, lambda c: any(r.value == 122.0 for r in c.readings))
            await opcua_server.write("fridge-a", 123.0, base + timedelta(seconds=23))
            await until(records, got, lambda c: any(r.value == 123.0 for r in c.readings))
    fridge_a = [
        r.value
        for r in got.readings
        if r.sensor_id == "fridge-a/t" and r.value is not None and r.value >= 100
    ]
    assert fridge_a == [100.0 + i for i in range(24)]
    gaps = [s for s in got.statuses if s.device_type == "sensor"]
    assert [(s.device_id, s.state) for s in gaps] == [
        ("fridge-b/t", DeviceState.OFFLINE),
        ("fridge-b/t", DeviceState.ONLINE),
    ]
    assert "no HistoryRead" in gaps[0].detail
    # Not from fridge-b's last change (an hour ago): until the cut, the session delivered (a
    # publish read before the cut may be handled a moment after it on a loaded machine).
    assert cut_at - timedelta(seconds=2) < gaps[0].time < cut_at + timedelta(seconds=1)
    # The gap closes at the sensor's next reading (7.0, written during the outage).
    (after,) = [r for r in got.readings if r.sensor_id == "fridge-b/t" and r.value == 7.0]
    assert gaps[0].time < gaps[1].time == min(after.time, after.received_at)
    assert got.records.index(gaps[1]) == got.records.index(after) + 1


async def test_a_gap_longer_than_history_limit_is_read_back_in_part_and_recorded(
    opcua_server: UaTestServer,
) -> None:
    async with TcpPipe(opcua_server.port) as pipe:
        cfg = config(
            f"opc.tcp://127.0.0.1:{pipe.port}/",
            nodes={f"nsu={TEST_NAMESPACE};s=fridge-a.Temperature": "fridge-a/t"},
            history_limit=5,
        )
        async with OpcUaSource(cfg) as source:
            records = aiter(source)
            got = Collected()
            base = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
            await opcua_server.write("fridge-a", 200.0, base)
            await until(records, got, lambda c: any(r.value == 200.0 for r in c.readings))
            pipe.cut()
            await wait_status(records, got, DeviceState.OFFLINE)
            for i in range(1, 13):
                await opcua_server.write("fridge-a", 200.0 + i, base + timedelta(seconds=i))
            pipe.accepting = True
            await until(records, got, lambda c: any(s.device_type == "sensor" for s in c.statuses))
            await opcua_server.write("fridge-a", 300.0, base + timedelta(seconds=30))
            await until(records, got, lambda c: any(r.value == 300.0 for r in c.readings))
    values = [r.value for r in got.readings if r.value is not None and r.value >= 200]
    # Five values read back (the first is 200.0 again, where the gap starts), then live ones.
    assert values[:5] == [200.0, 201.0, 202.0, 203.0, 204.0]
    assert values[5:] == [212.0, 300.0]  # 212.0: the current value on re-subscribing
    gap_start, gap_end = [s for s in got.statuses if s.device_type == "sensor"]
    assert "more than history_limit (5)" in gap_start.detail
    assert gap_start.time == base + timedelta(seconds=4)  # from the last value read back
    assert gap_end.state is DeviceState.ONLINE


async def test_history_is_paged_past_a_server_that_cuts_without_continuation_point(
    opcua_server: UaTestServer,
) -> None:
    """asyncua's server cuts an answer at NumValuesPerNode without a continuation point:
    read_raw asks again from the last time until everything is read, or the limit is met."""
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    for i in range(2500):  # values unlike any before: the server historizes changes
        await opcua_server.write("fridge-a", 1e4 + i, base + timedelta(milliseconds=10 * i))
    # The server shares this loop and has just stored 2,500 changes: a loaded machine can take
    # longer than asyncua's default 4 s to answer the first request.
    client = Client(opcua_server.endpoint, timeout=30)
    async with client:
        node_id = ua.NodeId(ua.String("fridge-a.Temperature"), ua.Int16(opcua_server.ns))
        end = base + timedelta(minutes=1)
        everything = await read_raw(client, node_id, base, None, 10_000)  # no end time
        bounded = await read_raw(client, node_id, base, end, 1200)
    assert [value_of(v) for v in everything.values] == [1e4 + i for i in range(2500)]
    assert everything.complete
    assert [value_of(v) for v in bounded.values] == [1e4 + i for i in range(1200)]
    assert not bounded.complete


def value_of(data: ua.DataValue) -> object:
    assert data.Value is not None
    return data.Value.Value
