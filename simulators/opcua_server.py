"""An OPC-UA server simulating the temperature probes of storage units, driven by thermal models.

Address space (namespace URI ``urn:coldtrace:simulator``, index ``ns`` read from the server's
NamespaceArray)::

    Objects/
      <unit_id>                      ns=<ns>;s=<unit_id>            (object, DisplayName = name)
        Name        String           ns=<ns>;s=<unit_id>.Name
        SetPoint    Double, °C       ns=<ns>;s=<unit_id>.SetPoint
        Profile     String           ns=<ns>;s=<unit_id>.Profile
        Temperature Double, °C       ns=<ns>;s=<unit_id>.Temperature
          EngineeringUnits  EUInformation (UNECE "CEL", degree Celsius)
          EURange           Range (the probe's measuring range)

Each update writes ``Temperature`` as a DataValue whose SourceTimestamp is the device's
(simulated) time; StatusCode ``Good``; ``UncertainEngineeringUnitsExceeded`` when the probe is
out of its range (value clamped); ``BadSensorFailure`` with a null value on a probe failure. A
stuck or drifting probe stays ``Good`` (the device cannot know); a silent one is simply not
written (no data change: the client's silence watchdog must notice).

Security: ``SecurityMode`` ``None``, ``Basic256Sha256_Sign`` and ``Basic256Sha256_SignAndEncrypt``
as configured. Without a certificate in the config, a self-signed one is generated in memory
(RSA 2048, SHA-256, the application URI in its subjectAltName). Client certificates are all
accepted (a simulator, not a production server).

``OpcUaSimulator`` is an async context manager (``.endpoint``, ``.namespace_index``); ``stop()``
and ``start()`` restart the server on the same port while the units keep evolving.

Exception tree::

    OpcUaSimulatorError
    └── CertificateError   the configured certificate or key cannot be loaded
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import logging
import socket
from pathlib import Path
from types import TracebackType
from typing import Annotated, Self, cast

from asyncua import ua
from asyncua.server.server import Server
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import BaseModel, ConfigDict, Field

from simulators.site import (
    Clock,
    SiteRuntime,
    run_for,
    runtime_from_args,
)
from simulators.thermal import SensorSample, SensorStatus

NAMESPACE_URI = "urn:coldtrace:simulator"
APPLICATION_URI = "urn:coldtrace:simulator:opcua"
_LOG = logging.getLogger(__name__)

_SECURITY = {
    "None": ua.SecurityPolicyType.NoSecurity,
    "Basic256Sha256_Sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
    "Basic256Sha256_SignAndEncrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
}
# UNECE Recommendation 20 code CEL, encoded as OPC-UA Part 8 prescribes for UnitId.
_CELSIUS = ua.EUInformation(
    NamespaceUri="http://www.opcfoundation.org/UA/units/un/cefact",
    UnitId=int.from_bytes(b"CEL", "big"),
    DisplayName=ua.LocalizedText("°C"),
    Description=ua.LocalizedText("degree Celsius"),
)


class OpcUaSimulatorError(RuntimeError):
    """The OPC-UA simulator cannot run as configured."""


class CertificateError(OpcUaSimulatorError):
    """The certificate or private key cannot be loaded."""


class OpcUaSimConfig(BaseModel):
    """Where and how the simulator serves; ``port=0`` picks a free port once, kept on restart."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 4840
    security: tuple[
        Annotated[str, Field(pattern="^(None|Basic256Sha256_Sign|Basic256Sha256_SignAndEncrypt)$")],
        ...,
    ] = ("None", "Basic256Sha256_Sign", "Basic256Sha256_SignAndEncrypt")
    certificate: Path | None = None
    private_key: Path | None = None
    update_interval: Annotated[dt.timedelta, Field(gt=dt.timedelta(0))] = dt.timedelta(seconds=1)


def generate_certificate(application_uri: str, common_name: str) -> tuple[bytes, bytes]:
    """A self-signed OPC-UA application certificate and its key, both PEM.

    The subjectAltName carries the application URI (OPC-UA Part 6 §6.2.2) and the host names;
    key usages are those Part 6 requires of an application instance certificate.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.UniformResourceIdentifier(application_uri),
                    x509.DNSName("localhost"),
                    x509.DNSName(socket.gethostname()),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def node_id(namespace_index: int, identifier: str) -> ua.NodeId:
    """The string NodeId ``ns=<namespace_index>;s=<identifier>``."""
    return ua.NodeId.from_string(f"ns={namespace_index};s={identifier}")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _data_value(sample: SensorSample, offset: dt.timedelta) -> ua.DataValue:
    stamp = sample.time + offset
    if sample.status is SensorStatus.BAD or sample.value is None:
        variant = ua.Variant()
        code = StatusCodes.BadSensorFailure
    else:
        variant = ua.Variant(sample.value, ua.VariantType.Double)
        code = (
            StatusCodes.Good
            if sample.status is SensorStatus.GOOD
            else StatusCodes.UncertainEngineeringUnitsExceeded
        )
    # asyncua's DateTime is a datetime subclass it never requires at run time.
    when = cast(ua.DateTime, stamp)
    return ua.DataValue(
        Value=variant,
        StatusCode=ua.StatusCode(ua.UInt32(code)),
        SourceTimestamp=when,
        ServerTimestamp=when,
    )


class OpcUaSimulator:
    """The simulated OPC-UA server of a site's ``opcua`` units (see module docstring)."""

    def __init__(self, config: OpcUaSimConfig, runtime: SiteRuntime, clock: Clock) -> None:
        self.config = config
        self.runtime = runtime
        self._clock = clock
        self._port = config.port or _free_port(config.host)
        self._server: Server | None = None
        self._namespace_index = 0
        self._cert_pem: bytes | None = None
        self._key_pem: bytes | None = None
        self._task: asyncio.Task[None] | None = None
        self.updates = 0

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.config.host}:{self._port}/"

    @property
    def namespace_index(self) -> int:
        return self._namespace_index

    @property
    def certificate_pem(self) -> bytes | None:
        """The server's certificate (PEM), for clients that pin it; None without security."""
        return self._cert_pem

    @property
    def certificate_der(self) -> bytes | None:
        """The same certificate in DER, as OPC-UA carries it in endpoint descriptions."""
        if self._cert_pem is None:
            return None
        cert = x509.load_pem_x509_certificate(self._cert_pem)
        return cert.public_bytes(serialization.Encoding.DER)

    @property
    def running(self) -> bool:
        return self._server is not None

    async def __aenter__(self) -> Self:
        await self.start()
        self._task = asyncio.create_task(self._run(), name="opcua-sim-updates")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.stop()

    async def start(self) -> None:
        """Starts (or restarts) the server on its port with the units' current values."""
        if self._server is not None:
            return
        secure = any(name != "None" for name in self.config.security)
        credentials = self._credentials() if secure else None
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("coldtrace temperature simulator")
        await server.set_application_uri(APPLICATION_URI)
        server.set_security_policy([_SECURITY[name] for name in self.config.security])
        if credentials is not None:
            cert, key = credentials
            await server.load_certificate(cert, format="pem")
            await server.load_private_key(key, format="pem")
        self._namespace_index = await server.register_namespace(NAMESPACE_URI)
        await self._build(server)
        await server.start()
        self._server = server
        await self.update()

    async def stop(self) -> None:
        """Stops the server; the units keep evolving and ``start()`` serves them again."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    async def update(self) -> None:
        """Advances the units to the clock's time and writes each probe's new reading."""
        self.runtime.advance_to(self._clock.now())
        server = self._server
        if server is None:
            return
        for unit_id, model in self.runtime.models.items():
            sample = model.read_sensor()
            if sample is None:  # silent probe: no data change at all
                continue
            offset = self.runtime.specs[unit_id].logger.clock_offset
            node = node_id(self._namespace_index, f"{unit_id}.Temperature")
            # A direct write keeps our SourceTimestamp and wakes the subscriptions.
            await server.write_attribute_value(node, _data_value(sample, offset))
        self.updates += 1

    async def _run(self) -> None:
        interval = self.config.update_interval.total_seconds()
        while True:
            await asyncio.sleep(interval)
            await self.update()

    def _credentials(self) -> tuple[bytes, bytes]:
        if self._cert_pem is None or self._key_pem is None:
            cfg = self.config
            if cfg.certificate is not None and cfg.private_key is not None:
                try:
                    self._cert_pem = _as_pem_cert(cfg.certificate.read_bytes())
                    self._key_pem = _as_pem_key(cfg.private_key.read_bytes())
                except (OSError, ValueError) as err:
                    raise CertificateError(f"cannot load certificate or key: {err}") from err
            elif cfg.certificate is not None or cfg.private_key is not None:
                raise CertificateError("give both certificate and private_key, or neither")
            else:
                self._cert_pem, self._key_pem = generate_certificate(
                    APPLICATION_URI, "coldtrace simulator"
                )
        return self._cert_pem, self._key_pem

    async def _build(self, server: Server) -> None:
        ns = self._namespace_index
        objects = server.nodes.objects
        for unit_id, spec in self.runtime.specs.items():
            params = self.runtime.models[unit_id].params
            obj = await objects.add_object(node_id(ns, unit_id), f"{ns}:{unit_id}")
            await obj.write_attribute(
                AttributeIds.DisplayName, ua.DataValue(ua.Variant(ua.LocalizedText(spec.name)))
            )
            await obj.add_property(node_id(ns, f"{unit_id}.Name"), "Name", spec.name)
            await obj.add_property(
                node_id(ns, f"{unit_id}.SetPoint"),
                "SetPoint",
                ua.Variant(params.set_point, ua.VariantType.Double),
            )
            await obj.add_property(
                node_id(ns, f"{unit_id}.Profile"), "Profile", params.profile.value
            )
            temp = await obj.add_variable(
                node_id(ns, f"{unit_id}.Temperature"),
                f"{ns}:Temperature",
                ua.Variant(params.set_point, ua.VariantType.Double),
                datatype=ObjectIds.Double,
            )
            await temp.add_property(
                node_id(ns, f"{unit_id}.Temperature.EngineeringUnits"),
                "EngineeringUnits",
                _CELSIUS,
            )
            await temp.add_property(
                node_id(ns, f"{unit_id}.Temperature.EURange"),
                "EURange",
                ua.Range(Low=params.sensor.range_min, High=params.sensor.range_max),
            )


def _as_pem_cert(data: bytes) -> bytes:
    if data.lstrip().startswith(b"-----BEGIN"):
        x509.load_pem_x509_certificate(data)
        return data
    return x509.load_der_x509_certificate(data).public_bytes(serialization.Encoding.PEM)


def _as_pem_key(data: bytes) -> bytes:
    if data.lstrip().startswith(b"-----BEGIN"):
        serialization.load_pem_private_key(data, password=None)
        return data
    key = serialization.load_der_private_key(data, password=None)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def run_from_args(args: argparse.Namespace) -> int:
    """``coldtrace sim opcua``: serves until Ctrl-C or ``--duration``; prints the node ids."""
    runtime, clock = runtime_from_args(args, "opcua")
    config = OpcUaSimConfig(
        host=args.host,
        port=args.port,
        security=tuple(s.strip() for s in args.security.split(",") if s.strip()),
        certificate=args.certificate,
        private_key=args.private_key,
        update_interval=dt.timedelta(seconds=args.update_interval),
    )

    async def main() -> None:
        async with OpcUaSimulator(config, runtime, clock) as sim:
            nodes = {u: f"ns={sim.namespace_index};s={u}.Temperature" for u in runtime.specs}
            print(json.dumps({"endpoint": sim.endpoint, "nodes": nodes}), flush=True)
            await run_for(args.duration)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0
