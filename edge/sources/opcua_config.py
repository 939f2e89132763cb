"""Configuration of one OPC-UA endpoint, and the NodeId text it accepts.

>>> parse_node_id("ns=2;s=fridge-a.Temperature", {}).to_string()
'ns=2;s=fridge-a.Temperature'
>>> parse_node_id("nsu=urn:x;i=5", {"urn:x": 3}).to_string()
'ns=3;i=5'
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from asyncua import ua
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.uaerrors import UaError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from protocols.records import DeviceId


class OpcUaSecurity(BaseModel):
    """Basic256Sha256 with a client application instance certificate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["Sign", "SignAndEncrypt"]
    certificate: Path = Field(description="client certificate, PEM or DER")
    private_key: Path = Field(description="its private key, PEM")
    server_certificate: Path | None = Field(
        default=None, description="pin the server's certificate; None: take it from the endpoint"
    )
    application_uri: str = Field(
        default="urn:coldtrace:edge", description="must equal the URI in the certificate's SAN"
    )


class OpcUaEndpointConfig(BaseModel):
    """One OPC-UA server and the nodes read from it (``nodes``: NodeId -> sensor id)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: DeviceId = Field(description="device id of the server in statuses")
    endpoint: str
    security: OpcUaSecurity | None = None
    username: str | None = None
    password: SecretStr | None = None
    nodes: dict[str, DeviceId] = Field(
        min_length=1, description="'ns=2;s=x' or 'nsu=<namespace uri>;s=x' -> sensor id"
    )
    sampling_interval: timedelta = timedelta(seconds=1)
    publishing_interval: timedelta = timedelta(seconds=1)
    keepalive_count: int = Field(default=5, ge=1, le=1000)
    queue_size: int = Field(default=10, ge=1, le=10_000, description="server-side, per node")
    handoff_size: int = Field(default=1000, ge=1, le=1_000_000)
    watchdog: timedelta = timedelta(seconds=30)
    request_timeout: timedelta = timedelta(seconds=5)
    session_timeout: timedelta = timedelta(minutes=2)
    backoff_initial: timedelta = timedelta(milliseconds=500)
    backoff_max: timedelta = timedelta(seconds=30)
    history_read: bool = Field(
        default=True, description="read back values published while disconnected (HistoryRead)"
    )
    history_limit: int = Field(
        default=100_000, ge=1, le=10_000_000, description="values read back per node and gap"
    )

    @field_validator("endpoint")
    @classmethod
    def _opc_tcp(cls, value: str) -> str:
        if not value.startswith("opc.tcp://"):
            raise ValueError("endpoint must be an opc.tcp:// URL")
        return value

    @field_validator("nodes")
    @classmethod
    def _node_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for text in value:
            parse_node_id(text, {})
        return value

    @model_validator(mode="after")
    def _timing(self) -> OpcUaEndpointConfig:
        for name in ("publishing_interval", "request_timeout", "backoff_initial", "watchdog"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")
        if self.sampling_interval < timedelta(0):
            raise ValueError("sampling_interval must not be negative")
        keepalive = self.publishing_interval * self.keepalive_count
        if self.watchdog < 2 * keepalive:
            raise ValueError(
                f"watchdog ({self.watchdog}) must be at least twice the keep-alive period "
                f"publishing_interval x keepalive_count ({keepalive})"
            )
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must not be below backoff_initial")
        return self


class UnknownNamespaceError(LookupError):
    """An ``nsu=`` node id whose namespace URI the server does not have."""


def parse_node_id(text: str, namespaces: dict[str, int]) -> ua.NodeId:
    """A NodeId from 'ns=..;' or 'nsu=<uri>;' text; uri looked up in ``namespaces``."""
    if text.startswith("nsu="):
        uri, sep, rest = text[4:].partition(";")
        if not sep or not uri or not rest:
            raise ValueError(f"invalid NodeId {text!r}: expected nsu=<uri>;<identifier>")
        if not namespaces:
            return ua.NodeId.from_string(rest)  # syntax check only
        if uri not in namespaces:
            raise UnknownNamespaceError(f"the server has no namespace {uri!r}")
        text = f"ns={namespaces[uri]};{rest}"
    try:
        return ua.NodeId.from_string(text)
    except (ValueError, UaError, IndexError) as err:
        raise ValueError(f"invalid NodeId {text!r}: {err}") from err


def monitor_request(
    config: OpcUaEndpointConfig, node_id: ua.NodeId, handle: int
) -> ua.MonitoredItemCreateRequest:
    """The monitored item of one node: its Value, with the trigger StatusValueTimestamp so that
    a repeated value at a new time (a steady fridge) is still a reading, and silence stays
    distinguishable from steadiness.

    >>> cfg = OpcUaEndpointConfig(name="p", endpoint="opc.tcp://h:4840/", nodes={"i=1": "s"})
    >>> r = monitor_request(cfg, ua.NodeId(1), 7)
    >>> (r.RequestedParameters.ClientHandle, r.RequestedParameters.SamplingInterval)
    (7, 1000.0)
    """
    params = ua.MonitoringParameters()
    params.ClientHandle = ua.UInt32(handle)
    params.SamplingInterval = ua.Double(config.sampling_interval.total_seconds() * 1000)
    params.QueueSize = ua.UInt32(config.queue_size)
    params.DiscardOldest = True
    params.Filter = ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp)
    item = ua.ReadValueId()
    item.NodeId = node_id
    item.AttributeId = ua.UInt32(AttributeIds.Value)
    request = ua.MonitoredItemCreateRequest()
    request.ItemToMonitor = item
    request.MonitoringMode = ua.MonitoringMode.Reporting
    request.RequestedParameters = params
    return request
