"""The demo's site, commissioned through the cloud's HTTP API as an administrator would.

Site, zone, storage units and dock doors, products, sensor mounts, the gateway (its token is
issued by the API, once), and the gateway's configuration: the OPC-UA server and its nodes, the
MQTT broker with one topic per logger, the LLRP readers and their doors. The demo's agent then
takes that configuration from the cloud (``remote_config``), like a real gateway; nothing about
the site is written by SQL or YAML. Every write carries the reason ``demo commissioning`` in the
audit trail.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from coldtrace import demo_site
from coldtrace.demo_wiring import Simulators
from simulators.opcua_server import NAMESPACE_URI
from simulators.site import MqttLogger, Shape

REASON = "demo commissioning"


class CommissioningError(RuntimeError):
    """The cloud refused a commissioning call (the message has its answer)."""


def _iso(span: timedelta) -> str:
    return f"PT{int(span.total_seconds())}S"


class Commissioner:
    """PUT/POSTs as the demo's administrator, each checked."""

    def __init__(self, client: httpx.AsyncClient, admin_token: str) -> None:
        self._client = client
        self._headers = {"Authorization": f"Bearer {admin_token}", "X-Coldtrace-Reason": REASON}

    async def send(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self._client.request(method, path, json=body, headers=self._headers)
        if answer.status_code not in {200, 201}:
            raise CommissioningError(f"{method} {path}: {answer.status_code} {answer.text[:500]}")
        result: dict[str, Any] = answer.json()
        return result


async def commission(
    client: httpx.AsyncClient, admin_token: str, *, sims: Simulators, mqtt_url: str, tag: str,
    mounted_at: datetime,
) -> str:  # fmt: skip
    """Builds the demo site through the API; returns the gateway's token.

    Sensors are mounted from ``mounted_at`` (before the simulated history), so the backlog the
    agent sends is judged at their units.
    """
    api = Commissioner(client, admin_token)
    site = demo_site.SITE_ID
    await api.send("PUT", f"/v1/sites/{site}",
                   {"name": "Demo pharmacy warehouse", "timezone": "Europe/Paris"})  # fmt: skip
    await api.send("PUT", f"/v1/locations/{demo_site.ZONE_ID}",
                   {"site_id": site, "kind": "zone", "name": "Cold zone"})  # fmt: skip
    for u in demo_site.UNITS:
        await api.send("PUT", f"/v1/locations/{u.unit_id}", {
            "site_id": site, "parent_id": demo_site.ZONE_ID, "kind": u.kind, "name": u.name,
            "profile_id": u.profile_id,
        })  # fmt: skip
    for door_id, (name, _reader) in demo_site.DOORS.items():
        await api.send("PUT", f"/v1/locations/{door_id}",
                       {"site_id": site, "kind": "dock_door", "name": name})  # fmt: skip
    for gtin, name, profile, budget in demo_site.PRODUCTS:
        product = {"name": name, "profile_id": profile, "stability_budget": _iso(budget)}
        await api.send("PUT", f"/v1/products/{gtin}", product)
    for u in demo_site.UNITS:
        await api.send("PUT", f"/v1/sensors/{u.sensor_id}", {
            "location_id": u.unit_id, "mounted_at": mounted_at.isoformat(),
            "description": f"{u.name} probe ({u.logger.transport})",
        })  # fmt: skip
    made = await api.send("POST", "/v1/gateways",
                          {"gateway_id": demo_site.GATEWAY_ID, "site_id": site})  # fmt: skip
    await _gateway_sources(api, sims, mqtt_url, tag)
    return str(made["token"])


async def _gateway_sources(api: Commissioner, sims: Simulators, mqtt_url: str, tag: str) -> None:
    gw = f"/v1/gateways/{demo_site.GATEWAY_ID}"
    await api.send("PUT", f"{gw}/sources/opcua-sim",
                   {"kind": "opcua", "settings": {"endpoint": sims.opcua.endpoint}})  # fmt: skip
    broker = {
        "broker_url": mqtt_url,
        "client_id": f"{demo_site.GATEWAY_ID}-{tag}",  # a fresh session per demo run
        "session_expiry": 600,
    }
    await api.send("PUT", f"{gw}/sources/site-broker", {"kind": "mqtt", "settings": broker})
    for u in demo_site.UNITS:
        await api.send("PUT", f"{gw}/sources/{_source(u)}/points/{u.sensor_id}", _point(u))
    for door_id, (_name, reader) in demo_site.DOORS.items():
        port = sims.readers[door_id].port
        await api.send("PUT", f"{gw}/sources/{reader}", {
            "kind": "llrp", "settings": {"host": "127.0.0.1", "port": port, "antennas": [1, 2]},
        })  # fmt: skip
        door = {"reader": reader, "outside_antennas": [1], "inside_antennas": [2]}
        await api.send("PUT", f"{gw}/doors/{door_id}", door)


def _source(unit: demo_site.Unit) -> str:
    return "opcua-sim" if unit.logger.transport == "opcua" else "site-broker"


def _point(unit: demo_site.Unit) -> dict[str, Any]:
    if unit.logger.transport == "opcua":
        return {"address": f"nsu={NAMESPACE_URI};s={unit.unit_id}.Temperature"}
    assert isinstance(unit.logger, MqttLogger)  # every other demo logger publishes by MQTT
    if unit.logger.shape is Shape.CHIRPSTACK:
        topic = f"application/+/device/{unit.logger.device_id}/event/up"
        return {"address": topic, "payload": {"format": "chirpstack-v4"}}
    topic = f"coldtrace/{demo_site.SITE_ID}/{unit.logger.device_id}/reading"
    return {"address": topic, "payload": {"format": "coldtrace-json"}}
