"""In-process asyncua servers for the OPC-UA source tests (several test files share them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

from asyncua import ua
from asyncua.server.server import Server
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.status_codes import StatusCodes

from coldtrace.devservices import free_port
from edge.sources.opcua import OpcUaEndpointConfig
from tests.support.temperature_sources import TEST_NAMESPACE

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FAST = {
    "sampling_interval": timedelta(milliseconds=20),
    "publishing_interval": timedelta(milliseconds=50),
    "keepalive_count": 4,
    "watchdog": timedelta(milliseconds=800),
    "request_timeout": timedelta(seconds=1),
    "backoff_initial": timedelta(milliseconds=50),
    "backoff_max": timedelta(milliseconds=300),
}


def node(identifier: str, ns: int) -> ua.NodeId:
    return ua.NodeId(ua.String(identifier), ua.Int16(ns))


def code(value: int) -> ua.StatusCode:
    return ua.StatusCode(ua.UInt32(value))


def stamp(value: datetime) -> ua.DateTime:
    return cast(ua.DateTime, value)  # asyncua's DateTime is a datetime at run time


@dataclass
class UaTestServer:
    server: Server
    port: int
    ns: int

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/"

    async def write(
        self,
        unit: str,
        value: float | None,
        source_time: datetime | None,
        status: int = StatusCodes.Good,
        server_time: datetime | None = None,
    ) -> None:
        variant = ua.Variant() if value is None else ua.Variant(value, ua.VariantType.Double)
        await self.server.write_attribute_value(
            node(f"{unit}.Temperature", self.ns),
            ua.DataValue(
                Value=variant,
                StatusCode=code(status),
                SourceTimestamp=None if source_time is None else stamp(source_time),
                ServerTimestamp=None if server_time is None else stamp(server_time),
            ),
        )


async def make_server(
    port: int,
    security: list[ua.SecurityPolicyType] | None = None,
    credentials: tuple[Path, Path] | None = None,
    history: tuple[str, ...] = (),
) -> UaTestServer:
    """Units fridge-a (no EngineeringUnits), fridge-b (°C), fridge-f (°F), fridge-x (a
    pressure); ``history``: units whose values the server keeps for HistoryRead."""
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    if security is not None:
        server.set_security_policy(security)
    if credentials is not None:
        await server.load_certificate(str(credentials[0]))
        await server.load_private_key(str(credentials[1]))
    await server.set_application_uri("urn:coldtrace:test:server")
    ns = await server.register_namespace(TEST_NAMESPACE)
    objects = server.nodes.objects
    units = {"fridge-a": None, "fridge-b": b"CEL", "fridge-f": b"FAH", "fridge-x": b"P1"}
    for unit, eu in units.items():
        obj = await objects.add_object(node(unit, ns), ua.QualifiedName(unit, ns))
        var = await obj.add_variable(
            node(f"{unit}.Temperature", ns), ua.QualifiedName("Temperature", ns), 0.0
        )
        if eu is not None:
            info = ua.EUInformation(
                NamespaceUri="http://www.opcfoundation.org/UA/units/un/cefact",
                UnitId=ua.Int32(int.from_bytes(eu, "big")),
                DisplayName=ua.LocalizedText(eu.decode()),
            )
            await var.add_property(
                node(f"{unit}.Temperature.EngineeringUnits", ns), "EngineeringUnits", info
            )
    for unit in history:
        var = server.get_node(node(f"{unit}.Temperature", ns))
        # asyncua records history but does not say so; real servers set this bit.
        await var.set_attr_bit(AttributeIds.AccessLevel, ua.AccessLevel.HistoryRead)
    await server.start()
    for unit in history:
        await server.historize_node_data_change(
            server.get_node(node(f"{unit}.Temperature", ns)),
            period=timedelta(days=3650),
            count=100_000,
        )
    return UaTestServer(server, port, ns)


@asynccontextmanager
async def running_server() -> AsyncIterator[UaTestServer]:
    """``make_server`` on a free port, stopped on the way out."""
    test_server = await make_server(free_port())
    try:
        yield test_server
    finally:
        await test_server.server.stop()


def config(endpoint: str, **extra: object) -> OpcUaEndpointConfig:
    values: dict[str, object] = {
        "name": "plc-1",
        "endpoint": endpoint,
        "nodes": {
            f"nsu={TEST_NAMESPACE};s=fridge-a.Temperature": "fridge-a/t",
            f"nsu={TEST_NAMESPACE};s=fridge-b.Temperature": "fridge-b/t",
        },
        **FAST,
    }
    values.update(extra)
    return OpcUaEndpointConfig.model_validate(values)
