"""The configuration sections of one gateway, built from its master data (pure).

The shapes are those of the edge agent's YAML file (docs/edge-agent.md), so the agent checks
them with the very models that check a local file. Ids are the master data's: an OPC-UA node or
an MQTT topic yields readings under the sensor id it is registered for, a door's passages under
its door id, so nothing is renamed between the gateway and the cloud.

>>> src = SourceRow("plc", "opcua", {"endpoint": "opc.tcp://plc:4840"}, {})
>>> pt = PointRow("fridge-1.t", "plc", "ns=2;s=T1", {})
>>> lim = LimitRow("fridge-1.t", 2.0, 8.0, timedelta(minutes=5))
>>> s = build_sections("gw-1", [src], [pt], [], [lim])
>>> s["opcua"][0]["nodes"], s["alarms"]["sensors"]["fridge-1.t"]["high"]
({'ns=2;s=T1': 'fridge-1.t'}, 8.0)
>>> len(digest(s))
24
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

SOURCE_KINDS = ("opcua", "mqtt", "llrp")
RESERVED_SETTINGS = {
    "opcua": frozenset({"name", "nodes"}),
    "mqtt": frozenset({"name", "decoders"}),
    "llrp": frozenset({"reader_id"}),
}
"""Keys the cloud fills in from master data; an admin cannot set them by hand."""
SECRET_KEYS = frozenset({"username", "password"})
_CLIENT_ID = re.compile(r"[^A-Za-z0-9._:-]")


@dataclass(frozen=True)
class SourceRow:
    name: str
    kind: str
    settings: dict[str, Any]
    credentials: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PointRow:
    sensor_id: str
    source_name: str
    address: str
    """The OPC-UA NodeId or the MQTT topic the sensor's values arrive on."""
    payload: dict[str, Any]
    """MQTT: the decoder's fields (``format`` and its options); unused for OPC-UA."""


@dataclass(frozen=True)
class DoorRow:
    door_id: str
    reader_name: str
    outside_antennas: tuple[int, ...]
    inside_antennas: tuple[int, ...]
    settings: dict[str, Any]


@dataclass(frozen=True)
class LimitRow:
    """The action limits of the storage profile where a sensor is mounted."""

    sensor_id: str
    low: float | None
    high: float | None
    on_delay: timedelta


def build_sections(
    gateway_id: str,
    sources: Sequence[SourceRow],
    points: Sequence[PointRow],
    doors: Sequence[DoorRow],
    limits: Sequence[LimitRow],
) -> dict[str, Any]:
    """The sections ``opcua``, ``mqtt``, ``llrp``, ``doors`` and ``alarms`` of the agent.

    A source with nothing to read (an OPC-UA server or an MQTT broker without points) is left
    out: the agent's models need at least one node or topic, and there is nothing to run.
    """
    by_source: dict[str, list[PointRow]] = defaultdict(list)
    for point in sorted(points, key=lambda p: p.sensor_id):
        by_source[point.source_name].append(point)
    out: dict[str, list[dict[str, Any]]] = {"opcua": [], "mqtt": [], "llrp": []}
    for src in sorted(sources, key=lambda s: s.name):
        pts = by_source.get(src.name, [])
        if src.kind == "opcua" and pts:
            nodes = {p.address: p.sensor_id for p in pts}
            out["opcua"].append({**src.settings, **src.credentials, "name": src.name,
                                 "nodes": nodes})  # fmt: skip
        elif src.kind == "mqtt" and pts:
            client_id = _CLIENT_ID.sub("-", f"coldtrace-{gateway_id}-{src.name}")[:128]
            decoders = [_decoder(p) for p in pts]
            out["mqtt"].append({"client_id": client_id, **src.settings, **src.credentials,
                                "name": src.name, "decoders": decoders})  # fmt: skip
        elif src.kind == "llrp":
            out["llrp"].append({**src.settings, "reader_id": src.name})
    read_here = {p.sensor_id for p in points}
    sensors = {
        lim.sensor_id: _limits(lim)
        for lim in sorted(limits, key=lambda x: x.sensor_id)
        if lim.sensor_id in read_here and (lim.low is not None or lim.high is not None)
    }
    door_list = [
        {**d.settings, "door_id": d.door_id, "reader_id": d.reader_name,
         "outside_antennas": list(d.outside_antennas), "inside_antennas": list(d.inside_antennas)}
        for d in sorted(doors, key=lambda d: d.door_id)
    ]  # fmt: skip
    return {**out, "doors": door_list, "alarms": {"sensors": sensors}}


def _decoder(point: PointRow) -> dict[str, Any]:
    # The sensor id is a literal template: the master data's id, whatever the payload says.
    return {"format": "coldtrace-json", **point.payload, "topic": point.address,
            "sensor_id": point.sensor_id}  # fmt: skip


def _limits(lim: LimitRow) -> dict[str, Any]:
    body: dict[str, Any] = {"on_delay": lim.on_delay.total_seconds()}
    if lim.low is not None:
        body["low"] = lim.low
    if lim.high is not None:
        body["high"] = lim.high
    return body


def digest(sections: dict[str, Any]) -> str:
    """A short, stable digest of the sections (keys sorted), for versions and ETags."""
    text = json.dumps(sections, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def masked(sections: dict[str, Any]) -> dict[str, Any]:
    """The sections as an administrator sees them: passwords replaced by ``"***"``.

    >>> masked({"mqtt": [{"name": "m", "password": "pw"}]})
    {'mqtt': [{'name': 'm', 'password': '***'}]}
    """

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: "***" if k == "password" else walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    result: dict[str, Any] = walk(sections)
    return result
