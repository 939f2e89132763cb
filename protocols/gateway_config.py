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
