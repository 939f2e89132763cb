"""The OPC-UA source against an independent server: node-opcua (tests/interop/opcua-server,
version pinned by its package-lock.json, installed by ``make interop-deps``).

fridge-a counts 1, 2, 3… every 50 ms, with history; fridge-b changes only when told. The tests
run SignAndEncrypt without a pinned server certificate, restart the server mid-stream, feed it
bad values, and make it refuse our certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coldtrace.devservices import free_port
from edge.sources.base import PermanentSourceError
from edge.sources.opcua import OpcUaEndpointConfig, OpcUaSource
from protocols.records import DeviceState, DeviceStatus, Quality, Reading, Record
from simulators.opcua_server import generate_certificate
from tests.support.temperature_sources import Collected, wait_status

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SERVER_DIR = Path(__file__).parent / "opcua-server"
NAMESPACE = "urn:coldtrace:interop"


def _node() -> str:
    node = shutil.which("node")
    if node is None or not (SERVER_DIR / "node_modules" / "node-opcua").is_dir():
        pytest.fail("node-opcua is not installed: run `make interop-deps` (npm ci)")
    return node


NODE_OPCUA_LOG = re.compile(rb"^\d\d:\d\d:\d\d\.\d+Z :")
"""A log line of node-opcua's own: ``10:16:29.354Z :verify_pcks1  :66  [NODE-OPCUA-W27] …``."""


@dataclass
class NodeOpcUa:
    """One node-opcua server process; ``write`` sends a command on its standard input."""

    process: asyncio.subprocess.Process
    port: int

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/"

    async def write(self, unit: str, value: float, when: str, status: str = "") -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"write {unit} {value} {when} {status}\n".encode())
        await self.process.stdin.drain()
        # node-opcua logs its own warnings on stdout (e.g. W27, Node older than it asks for,
        # at its first signature check); anything else before the answer is a failure.
        while NODE_OPCUA_LOG.match(
            answer := await asyncio.wait_for(self.process.stdout.readline(), 10)
        ):
            pass
        assert answer == b"OK\n", answer

    async def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()


async def start_server(port: int, pki: Path, *flags: str) -> NodeOpcUa:
    process = await asyncio.create_subprocess_exec(
        _node(),
        str(SERVER_DIR / "server.mjs"),
        str(port),
        str(pki),
        *flags,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=SERVER_DIR,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            while not (line := await process.stdout.readline()).startswith(b"READY"):
                if not line:
                    raise RuntimeError("node-opcua server exited before it was ready")
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return NodeOpcUa(process, port)


@pytest.fixture(scope="module")
def server_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One PKI folder for the servers of this module: node-opcua makes its certificate once.
    Each test's edge certificate is new, so the server knows none of them beforehand."""
    return tmp_path_factory.mktemp("node-opcua-pki")


@pytest.fixture(scope="module")
async def strict_server(server_pki: Path) -> AsyncIterator[NodeOpcUa]:
    """A server that trusts no certificate it does not know (node-opcua's default), fridge-a
    counting every 100 ms; shared by the tests that do not restart it."""
    server = await start_server(free_port(), server_pki, "--tick-ms", "100")
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def edge_pki(tmp_path: Path) -> dict[str, Path]:
    cert, key = generate_certificate("urn:coldtrace:edge", "coldtrace edge")
    (tmp_path / "edge.pem").write_bytes(cert)
    (tmp_path / "edge-key.pem").write_bytes(key)
    return {"certificate": tmp_path / "edge.pem", "private_key": tmp_path / "edge-key.pem"}


def config(endpoint: str, **extra: object) -> OpcUaEndpointConfig:
    values: dict[str, object] = {
        "name": "node-opcua",
        "endpoint": endpoint,
        "nodes": {
            f"nsu={NAMESPACE};s=fridge-a.Temperature": "fridge-a/t",
            f"nsu={NAMESPACE};s=fridge-b.Temperature": "fridge-b/t",
        },
        "sampling_interval": timedelta(0),  # every change (node-opcua: its minimum, 10 ms)
        "publishing_interval": timedelta(milliseconds=100),
        "queue_size": 100,
        "keepalive_count": 4,
        "watchdog": timedelta(seconds=2),
        "request_timeout": timedelta(seconds=2),
        "backoff_initial": timedelta(milliseconds=100),
        "backoff_max": timedelta(milliseconds=500),
        **extra,
    }
    return OpcUaEndpointConfig.model_validate(values)


async def collect(
    records: AsyncIterator[tuple[Record, ...]], into: Collected, done: object, limit: float = 20
) -> None:
    async with asyncio.timeout(limit):
        while not done(into):  # type: ignore[operator]
            into.records.extend(await anext(records))


def counts(got: Collected) -> list[float]:
    return [r.value for r in got.readings if r.sensor_id == "fridge-a/t" and r.value is not None]


def sensor_statuses(got: Collected) -> list[DeviceStatus]:
    """The statuses of sensors (gaps that could not be read back), not of the server."""
    return [s for s in got.statuses if s.device_type == "sensor"]


@pytest.mark.timeout(120)  # about 15 s alone; two node-opcua starts on a loaded machine take more
async def test_sign_and_encrypt_across_a_server_restart(
    server_pki: Path, edge_pki: dict[str, Path]
) -> None:
    """Every value the restarted server counted arrives once and in order, including those
    published before the source was back (read back with HistoryRead); the gap of the node
    without history is recorded with its reason."""
    port, pki = free_port(), server_pki
    security = {"mode": "SignAndEncrypt", **edge_pki}  # no pinned server certificate
    flags = ("--accept-unknown-certificates", "--tick-ms", "50")
    server = await start_server(port, pki, *flags)
    try:
        async with OpcUaSource(config(server.endpoint, security=security)) as source:
            records = aiter(source)
            got = Collected()
            await wait_status(records, got, DeviceState.ONLINE, limit=20)
            await collect(records, got, lambda c: len(counts(c)) >= 10)
            first_life = counts(got)
            stopping_at = datetime.now(UTC)
            await server.stop()
            stopped_at = datetime.now(UTC)
            await wait_status(records, got, DeviceState.OFFLINE, limit=10)
            await asyncio.sleep(0.5)
            server = await start_server(port, pki, *flags)
            restart = len(got.records)
            await wait_status(records, got, DeviceState.ONLINE, limit=20)
            await collect(
                records,
                got,
                lambda c: len(counts(c)) >= len(first_life) + 20 and len(sensor_statuses(c)) >= 2,
            )
    finally:
        await server.stop()
    assert first_life == sorted(first_life)
    second_life = [
        r.value
        for r in got.records[restart:]
        if isinstance(r, Reading) and r.sensor_id == "fridge-a/t" and r.value is not None
    ]
    if second_life[0] == 0.0:
        second_life = second_life[1:]  # the variable's value before the first count
    assert second_life[0] == 1.0, "the values counted before the reconnect were not read back"
    assert second_life == [float(i) for i in range(1, len(second_life) + 1)]
    # fridge-b keeps no history: its gap is a no-data interval with the reason, closed by its
    # next reading (the restarted server's first value).
    gap = sensor_statuses(got)
    assert [(s.device_id, s.state) for s in gap] == [
        ("fridge-b/t", DeviceState.OFFLINE),
        ("fridge-b/t", DeviceState.ONLINE),
    ]
    assert "no HistoryRead" in gap[0].detail
    # From when the server stopped, not from fridge-b's only value (set when it started).
    assert stopping_at - timedelta(seconds=2) < gap[0].time <= stopped_at < gap[1].time


async def test_bad_values_and_an_unknown_namespace_cost_only_themselves(
    strict_server: NodeOpcUa,
) -> None:
    server = strict_server
    nodes = {
        f"nsu={NAMESPACE};s=fridge-a.Temperature": "fridge-a/t",
        f"nsu={NAMESPACE};s=fridge-b.Temperature": "fridge-b/t",
        "nsu=urn:not:on:this:server;s=fridge-c.Temperature": "fridge-c/t",
    }
    async with OpcUaSource(config(server.endpoint, nodes=nodes)) as source:
        records = aiter(source)
        got = Collected()
        degraded = await wait_status(records, got, DeviceState.DEGRADED, limit=20)
        now = datetime.now(UTC)
        for value, when, status in (
            (3.5, "1900-01-01T00:00:00Z", ""),  # a device whose clock was never set
            (4.5, (now + timedelta(seconds=1)).isoformat(), "BadSensorFailure"),
            (5.5, (now + timedelta(seconds=2)).isoformat(), ""),
        ):
            await server.write("fridge-b", value, when, status)
            await asyncio.sleep(0.3)  # one sample each
        await collect(records, got, lambda c: any(r.value == 5.5 for r in c.readings))
        before = len(counts(got))
        await collect(records, got, lambda c: len(counts(c)) >= before + 5)
    assert "urn:not:on:this:server" in degraded.detail
    fridge_b = [r for r in got.readings if r.sensor_id == "fridge-b/t"]
    assert [(r.value, r.quality) for r in fridge_b[-3:]] == [
        (3.5, Quality.UNCERTAIN),
        (None, Quality.BAD),
        (5.5, Quality.GOOD),
    ]
    assert fridge_b[-3].time >= now  # the receipt time, not 1900
    assert not [s for s in got.statuses if s.state is DeviceState.OFFLINE]


async def test_a_refused_certificate_is_reported_with_what_to_do(
    strict_server: NodeOpcUa, edge_pki: dict[str, Path]
) -> None:
    got = Collected()
    cfg = config(strict_server.endpoint, security={"mode": "SignAndEncrypt", **edge_pki})
    async with OpcUaSource(cfg) as source:
        with pytest.raises(PermanentSourceError, match="refused our certificate"):
            await collect(aiter(source), got, lambda _c: False)
    (status,) = got.statuses
    assert status.state is DeviceState.OFFLINE
    assert "trust the edge certificate" in status.detail
    assert str(edge_pki["certificate"]) in status.detail
