"""The gateway configuration exchanged between the cloud and an edge agent.

The cloud builds each gateway's configuration from its master data (``cloud.gateway_config``)
and serves it at ``GET /v1/gateway/config`` with an ``ETag``; the agent validates ``sections``
with the same models as its local YAML file (``edge.remote_config``), applies it, and answers
with a :class:`ConfigReport` at ``POST /v1/gateway/config/report``. ``sections`` holds the
YAML's source sections (``opcua``, ``mqtt``, ``llrp``, ``doors``) and ``alarms`` (the local
alarm limits per sensor); their shape is the edge's to check, so it is kept loose here.

>>> doc = GatewayConfigDocument(gateway_id="gw-1", version=3, sections={"opcua": []})
>>> doc.etag_for("abc")
'"gw-1.3.abc"'
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from protocols.records import DeviceId

CONFIG_SECTIONS = ("opcua", "mqtt", "llrp", "doors", "alarms")
"""The parts of the edge configuration the cloud owns; the rest stays in the local file."""


class GatewayConfigDocument(BaseModel):
    """One version of a gateway's configuration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gateway_id: DeviceId
    version: int = Field(ge=1)
    sections: dict[str, Any]

    def etag_for(self, digest: str) -> str:
        return f'"{self.gateway_id}.{self.version}.{digest}"'


class ConfigReport(BaseModel):
    """What the agent did with a version: applied it, or refused it (and why)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=1)
    applied: bool
    reason: str | None = Field(default=None, max_length=4000)


class BrowseRequest(BaseModel):
    """An administrator's request to browse one OPC-UA server through a gateway.

    ``source`` holds the source's settings as the cloud keeps them (endpoint, security,
    credentials): a server is browsed before any of its nodes is read, so before it is part of
    the gateway's running configuration.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: int
    source_name: DeviceId
    start_node: str
    depth: int = Field(ge=1, le=10)
    source: dict[str, Any]


class BrowsedNode(BaseModel):
    """One node of the address space, as the agent found it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node_id: str
    """``nsu=<namespace uri>;...`` (stable across server restarts) or ``ns=0;...``."""
    path: str
    """Browse names from the start node, joined by ``/``."""
    display_name: str
    node_class: str
    data_type: str | None = None
    value: float | str | bool | None = None
    """A variable's value when it was browsed (numbers and short text only)."""


class BrowseAnswer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    nodes: list[BrowsedNode] = Field(default_factory=list, max_length=1000)
    """At most 1000: the answer must fit the cloud's ordinary body limit (256 KiB)."""
    truncated: bool = False
    """The agent stopped at its node limit before the depth asked."""
    error: str | None = Field(default=None, max_length=4000)
