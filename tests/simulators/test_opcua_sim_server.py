"""The OPC-UA simulator read by a real asyncua client: address space, values, faults, security,
restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from simulators.opcua_server import (
    APPLICATION_URI,
    NAMESPACE_URI,
    CertificateError,
    OpcUaSimConfig,
    OpcUaSimulator,
    generate_certificate,
    node_id,
)
from simulators.site import OpcUaLogger, SiteRuntime, SiteSpec, UnitSpec
from simulators.thermal import Fault, SensorParameters, UnitProfile

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
SLOW = timedelta(hours=1)  # the background task stays idle: tests drive update() themselves


class ManualClock:
    def __init__(self, start: datetime) -> None:
        self.time = start

    def now(self) -> datetime:
        return self.time

    def advance(self, delta: timedelta) -> None:
        self.time += delta


def site() -> SiteSpec:
    units = [
        UnitSpec(
            unit_id="fridge-a",
            name="Fridge A",
            profile=UnitProfile.REFRIGERATOR,
            seed=1,
            logger=OpcUaLogger(),
        ),
        UnitSpec(
            unit_id="fridge-b",
            name="Fridge B",
            profile=UnitProfile.REFRIGERATOR,
            seed=2,
            logger=OpcUaLogger(clock_offset=timedelta(seconds=-90)),
        ),
        UnitSpec(
            unit_id="ultra-a",
            name="ULT A",
            profile=UnitProfile.ULTRA_COLD,
            seed=3,
            logger=OpcUaLogger(),
        ),
        # A general-purpose probe (-40..85 °C) put in an ultra-cold freezer by mistake.
        UnitSpec(
            unit_id="ultra-b",
            name="ULT B",
            profile=UnitProfile.ULTRA_COLD,
            seed=4,
            sensor=SensorParameters(range_min=-40.0, range_max=85.0),
            logger=OpcUaLogger(),
        ),
    ]
    return SiteSpec(site_id="site-t", units=tuple(units))


class Harness:
    def __init__(self, sim: OpcUaSimulator, clock: ManualClock) -> None:
        self.sim = sim
        self.clock = clock

    def node(self, client: Client, unit: str, leaf: str = "Temperature") -> ua.NodeId:
        return node_id(self.sim.namespace_index, f"{unit}.{leaf}")

    async def step(self, delta: timedelta = timedelta(minutes=1)) -> None:
        self.clock.advance(delta)
        await self.sim.update()


@pytest.fixture(scope="module")
async def harness() -> AsyncIterator[Harness]:
    clock = ManualClock(T0)
    runtime = SiteRuntime(site(), start=T0)
    config = OpcUaSimConfig(port=0, update_interval=SLOW)
    async with OpcUaSimulator(config, runtime, clock) as sim:
        yield Harness(sim, clock)


async def test_address_space_metadata_and_units(harness: Harness) -> None:
    async with Client(harness.sim.endpoint) as client:
        ns = await client.get_namespace_index(NAMESPACE_URI)
        assert ns == harness.sim.namespace_index
        unit = client.get_node(node_id(ns, "fridge-a"))
        assert (await unit.read_display_name()).Text == "Fridge A"
        assert (
            await client.get_node(harness.node(client, "fridge-a", "Name")).read_value()
            == "Fridge A"
        )
        assert (
            await client.get_node(harness.node(client, "fridge-a", "SetPoint")).read_value() == 5.0
        )
        profile = client.get_node(harness.node(client, "ultra-a", "Profile"))
        assert await profile.read_value() == "ultra-cold"
        temp = client.get_node(harness.node(client, "fridge-a"))
        assert await temp.read_data_type() == ua.NodeId(ua.Int32(ObjectIds.Double))
        eu = await client.get_node(
            harness.node(client, "fridge-a", "Temperature.EngineeringUnits")
        ).read_value()
        assert (eu.UnitId, eu.DisplayName.Text) == (4408652, "°C")
        rng = await client.get_node(
            harness.node(client, "ultra-a", "Temperature.EURange")
        ).read_value()
        assert (rng.Low, rng.High) == (-100.0, 50.0)
        children = {(await c.read_browse_name()).Name for c in await unit.get_children()}
        assert {"Name", "SetPoint", "Profile", "Temperature"} <= children


async def test_values_carry_the_device_time_and_good_status(harness: Harness) -> None:
    await harness.step(timedelta(minutes=30))
    async with Client(harness.sim.endpoint) as client:
        a = await client.get_node(harness.node(client, "fridge-a")).read_data_value()
        b = await client.get_node(harness.node(client, "fridge-b")).read_data_value()
        u = await client.get_node(harness.node(client, "ultra-a")).read_data_value()
    assert a.StatusCode is not None
    assert a.StatusCode.is_good()
    assert a.SourceTimestamp == harness.clock.now()
    assert b.SourceTimestamp == harness.clock.now() - timedelta(seconds=90)  # its clock is late
    assert a.Value is not None
    assert 2.0 < a.Value.Value < 8.0
    assert a.Value.VariantType is ua.VariantType.Double
    assert u.Value is not None
    assert -80.0 < u.Value.Value < -60.0


class Changes:
    def __init__(self) -> None:
        self.items: asyncio.Queue[ua.DataValue] = asyncio.Queue(maxsize=1000)

    def datachange_notification(self, node: object, val: object, data: object) -> None:
        self.items.put_nowait(data.monitored_item.Value)  # type: ignore[attr-defined]


async def drain(changes: Changes, settle: float = 0.3) -> list[ua.DataValue]:
    out: list[ua.DataValue] = []
    while True:
        try:
            out.append(await asyncio.wait_for(changes.items.get(), settle))
        except TimeoutError:
            return out


async def test_subscription_sees_each_update_and_the_probe_faults(harness: Harness) -> None:
    model = harness.sim.runtime.models["fridge-a"]
    changes = Changes()
    async with Client(harness.sim.endpoint) as client:
        sub = await client.create_subscription(50, changes)
        await sub.subscribe_data_change(client.get_node(harness.node(client, "fridge-a")))
        await drain(changes)  # the initial value
        stamps = []
        for _ in range(3):
            await harness.step()
            stamps.append(harness.clock.now())
        seen = await drain(changes)
        assert [dv.SourceTimestamp for dv in seen][-3:] == stamps

        model.start_fault(Fault.SENSOR_FAILURE)
        await harness.step()
        (bad,) = await drain(changes)
        assert bad.StatusCode == ua.StatusCode(ua.UInt32(StatusCodes.BadSensorFailure))
        assert bad.Value is not None
        assert bad.Value.Value is None
        model.end_fault(Fault.SENSOR_FAILURE)

        model.start_fault(Fault.SENSOR_SILENT)
        await harness.step()
        await harness.step()
        assert await drain(changes) == []  # silence: no data change at all
        model.end_fault(Fault.SENSOR_SILENT)

        model.start_fault(Fault.SENSOR_STUCK)
        await harness.step()
        stuck = await drain(changes)
        assert stuck
        assert stuck[-1].StatusCode is not None
        assert stuck[-1].StatusCode.is_good()
        model.end_fault(Fault.SENSOR_STUCK)
        await sub.delete()


async def test_out_of_range_is_clamped_and_uncertain(harness: Harness) -> None:
    await harness.step()
    async with Client(harness.sim.endpoint) as client:
        dv = await client.get_node(harness.node(client, "ultra-b")).read_data_value(
            raise_on_bad_status=False
        )
    assert dv.Value is not None
    assert dv.Value.Value == -40.0
    assert dv.StatusCode == ua.StatusCode(ua.UInt32(StatusCodes.UncertainEngineeringUnitsExceeded))


@pytest.mark.parametrize(
    "mode", [ua.MessageSecurityMode.Sign, ua.MessageSecurityMode.SignAndEncrypt]
)
async def test_basic256sha256_with_client_certificate(
    harness: Harness, tmp_path: Path, mode: ua.MessageSecurityMode
) -> None:
    cert, key = generate_certificate("urn:coldtrace:test:client", "test client")
    (tmp_path / "client.pem").write_bytes(cert)
    (tmp_path / "client-key.pem").write_bytes(key)
    client = Client(harness.sim.endpoint)
    client.application_uri = "urn:coldtrace:test:client"
    server_cert = harness.sim.certificate_der
    assert server_cert is not None
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        str(tmp_path / "client.pem"),
        str(tmp_path / "client-key.pem"),
        server_certificate=server_cert,
        mode=mode,
    )
    async with client:
        dv = await client.get_node(harness.node(client, "fridge-a")).read_data_value()
    assert dv.StatusCode is not None
    assert dv.StatusCode.is_good()
    assert client.security_policy.URI == SecurityPolicyBasic256Sha256.URI


def test_generated_certificate_names_the_application() -> None:
    cert_pem, key_pem = generate_certificate(APPLICATION_URI, "sim")
    cert = x509.load_pem_x509_certificate(cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert APPLICATION_URI in san.get_values_for_type(x509.UniformResourceIdentifier)
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == "sha256"
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]


async def test_secure_only_server_refuses_an_insecure_client_and_loads_der_files(
    tmp_path: Path,
) -> None:
    cert_pem, key_pem = generate_certificate(APPLICATION_URI, "sim")
    cert_der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    (tmp_path / "server.der").write_bytes(cert_der)
    (tmp_path / "server-key.pem").write_bytes(key_pem)
    config = OpcUaSimConfig(
        port=0,
        security=("Basic256Sha256_SignAndEncrypt",),
        certificate=tmp_path / "server.der",
        private_key=tmp_path / "server-key.pem",
        update_interval=SLOW,
    )
    runtime = SiteRuntime(site(), start=T0)
    async with OpcUaSimulator(config, runtime, ManualClock(T0)) as sim:
        assert sim.certificate_pem is not None
        assert (
            x509.load_pem_x509_certificate(sim.certificate_pem).public_bytes(
                serialization.Encoding.DER
            )
            == cert_der
        )
        client = Client(sim.endpoint, timeout=2)
        with pytest.raises(UaError):
            async with client:
                await client.get_node(node_id(2, "fridge-a.Temperature")).read_value()


async def test_half_configured_certificate_is_refused(tmp_path: Path) -> None:
    config = OpcUaSimConfig(port=0, certificate=tmp_path / "missing.pem", update_interval=SLOW)
    sim = OpcUaSimulator(config, SiteRuntime(site(), start=T0), ManualClock(T0))
    with pytest.raises(CertificateError, match="both"):
        await sim.start()
    config = OpcUaSimConfig(
        port=0, certificate=tmp_path / "a.pem", private_key=tmp_path / "b.pem", update_interval=SLOW
    )
    sim = OpcUaSimulator(config, SiteRuntime(site(), start=T0), ManualClock(T0))
    with pytest.raises(CertificateError, match="cannot load"):
        await sim.start()


async def test_restart_on_the_same_port_serves_the_units_where_they_are() -> None:
    clock = ManualClock(T0)
    config = OpcUaSimConfig(port=0, security=("None",), update_interval=timedelta(milliseconds=20))
    async with OpcUaSimulator(config, SiteRuntime(site(), start=T0), clock) as sim:
        endpoint = sim.endpoint
        async with Client(endpoint, timeout=2) as client:
            before = await client.get_node(
                node_id(sim.namespace_index, "fridge-a.Temperature")
            ).read_data_value()
        await sim.stop()
        assert not sim.running
        with pytest.raises(ConnectionRefusedError):  # nothing listens any more
            async with Client(endpoint, timeout=2):
                pass
        clock.advance(timedelta(minutes=45))
        await sim.start()
        assert sim.endpoint == endpoint
        async with Client(endpoint, timeout=2) as client:
            after = await client.get_node(
                node_id(sim.namespace_index, "fridge-a.Temperature")
            ).read_data_value()
        assert before.SourceTimestamp == T0
        assert after.SourceTimestamp == T0 + timedelta(minutes=45)
        assert sim.runtime.time == T0 + timedelta(minutes=45)
        # The background task keeps following the clock after the restart.
        clock.advance(timedelta(minutes=5))
        for _ in range(100):
            if sim.runtime.time == clock.now():
                break
            await asyncio.sleep(0.02)
        assert sim.runtime.time == T0 + timedelta(minutes=50)
        assert sim.updates >= 3
