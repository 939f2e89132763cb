"""The temperature rig: a simulated site, its simulators, an edge agent and a cloud, as processes.

``TemperatureRig`` writes the site description (OPC-UA probes and MQTT loggers in three device
shapes), the edge agent's YAML configuration for it, and starts and stops the real processes:
``coldtrace sim opcua``, ``coldtrace sim mqtt``, ``coldtrace edge run`` and
``coldtrace cloud serve``. Names (site, topics, ChirpStack application, Tasmota device, MQTT
client id) carry a per-test tag, so tests sharing the broker never see each other's traffic.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import yaml

from coldtrace.devservices import free_port
from protocols.payloads import DecoderSpec
from tests.e2e import processes
from tests.e2e.processes import Proc
from tests.e2e.witness import Key

DEV_EUI = "24e124136b502217"
PROBE_ID = "01191ED79247"


@dataclass
class TemperatureRig:
    """One test's site; ``opcua_units`` and ``mqtt_units`` are (unit id, sensor id) pairs."""

    tmp: Path
    database_url: str
    mqtt_url: str
    time_scale: float = 60.0
    start: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(hours=6))
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    cloud_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    token: str = ""
    cloud: Proc | None = None
    edge: Proc | None = None
    sims: list[Proc] = field(default_factory=list)
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.tmp / "processes.log"

    @property
    def site_id(self) -> str:
        return f"e2e-{self.tag}"

    @property
    def app_id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, self.tag))

    @property
    def tasmota(self) -> str:
        return f"tasmota_{self.tag}"

    @property
    def opcua_units(self) -> dict[str, str]:
        return {"fridge-a": "fridge-a.t", "fridge-b": "fridge-b.t"}

    @property
    def mqtt_sensors(self) -> set[str]:
        """Sensor ids the MQTT loggers produce (ChirpStack adds humidity as ``/rh``)."""
        return {"fridge-c.t", DEV_EUI, f"{DEV_EUI}/rh", f"{self.tasmota}/{PROBE_ID}"}

    def site(self, failing: str | None = None) -> Path:
        """The site YAML: two OPC-UA fridges, a plain logger, a LoRaWAN freezer, a Tasmota room."""

        def unit(uid: str, profile: str, seed: int, logger: dict[str, object]) -> dict[str, object]:
            return {"unit_id": uid, "name": uid, "profile": profile, "seed": seed,
                    "logger": logger}  # fmt: skip

        units = [
            unit("fridge-a", "refrigerated", 1, {"transport": "opcua"}),
            unit("fridge-b", "refrigerated", 2, {"transport": "opcua"}),
            unit("fridge-c", "refrigerated", 3, {"transport": "mqtt", "shape": "plain",
                                                 "device_id": "fridge-c.t", "interval": "PT10S"}),
            unit("freezer-d", "frozen", 4, {"transport": "mqtt", "shape": "chirpstack",
                                            "device_id": DEV_EUI, "interval": "PT30S",
                                            "application_id": self.app_id}),
            unit("room-e", "controlled-room", 5, {"transport": "mqtt", "shape": "tasmota",
                                                  "device_id": self.tasmota, "interval": "PT30S",
                                                  "timezone": "Europe/Paris",
                                                  "probe_id": PROBE_ID}),
        ]  # fmt: skip
        path = self.tmp / "site.yaml"
        path.write_text(yaml.safe_dump({"site_id": self.site_id, "units": units}))
        return path

    def decoders(self) -> list[DecoderSpec]:
        """What the edge decodes (and the witness with it): only this test's topics."""
        return [
            DecoderSpec(topic=f"coldtrace/{self.site_id}/+/reading", format="coldtrace-json"),
            DecoderSpec(topic=f"application/{self.app_id}/device/+/event/up",
                        format="chirpstack-v4"),
            DecoderSpec(topic=f"tele/{self.tasmota}/SENSOR", format="tasmota",
                        sensor_id=f"{self.tasmota}/{{sensor}}", timezone="Europe/Paris"),
        ]  # fmt: skip

    def edge_config(self, opcua_endpoint: str) -> Path:
        nodes = {f"ns=2;s={u}.Temperature": s for u, s in self.opcua_units.items()}
        config = {
            "gateway_id": "gw-e2e",
            "cloud": {"cloud_url": f"http://127.0.0.1:{self.cloud_port}", "token": self.token,
                      "allow_insecure_http": True,
                      "linger": 0.1, "backoff_initial": 0.05, "backoff_max": 0.5,
                      "request_timeout": 5},
            "outbox": {"path": str(self.tmp / "outbox.db")},
            "health": {"port": self.health_port},
            "supervision": {"shutdown_flush": 2, "stop_grace": 3, "restart_initial": 0.1,
                            "restart_max": 1},
            "mqtt": [{"name": "site-broker", "broker_url": self.mqtt_url,
                      "client_id": f"e2e-{self.tag}", "session_expiry": "PT5M",
                      "backoff_initial": 0.05, "backoff_max": 0.5,
                      "decoders": [d.model_dump(mode="json", exclude_defaults=True)
                                   for d in self.decoders()]}],
            "opcua": [{"name": "opcua-sim", "endpoint": opcua_endpoint, "nodes": nodes,
                       "sampling_interval": 0.05, "publishing_interval": 0.1,
                       "keepalive_count": 5, "watchdog": 2, "queue_size": 200,
                       "backoff_initial": 0.1, "backoff_max": 0.5}],
        }  # fmt: skip
        path = self.tmp / "edge.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def sim_args(self, site: Path, duration: float) -> list[str]:
        return ["--site", str(site), "--time-scale", str(self.time_scale),
                "--start", self.start.isoformat(), "--duration", str(duration)]  # fmt: skip

    async def register(self, site: str | None = None) -> None:
        """``coldtrace cloud gateway add`` for the rig's gateway; its token goes into the config."""
        self.token = await processes.gateway_token(self.database_url, "gw-e2e", site)

    async def start_cloud(self) -> Proc:
        self.cloud = await processes.cloud_serve(self.database_url, self.cloud_port, self.log)
        return self.cloud

    async def start_edge(self, config: Path) -> Proc:
        self.edge = await processes.edge_run(config, self.health_port, self.log)
        return self.edge

    async def simulator(self, kind: str, args: list[str]) -> tuple[Proc, dict[str, object]]:
        """``coldtrace sim <kind>``, stopped with the rest by :meth:`stop_all`."""
        proc, info = await processes.simulator(kind, args, self.log)
        self.sims.append(proc)
        return proc, info

    async def stop_all(self) -> None:
        """Stops whatever still runs (the edge first, so it can flush); the fixture's teardown."""
        for proc in (self.edge, *self.sims, self.cloud):
            if proc is not None and proc.running:
                await proc.terminate()


async def stored(database_url: str) -> Counter[Key]:
    """How many times each (sensor, device time) is in ``readings``."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute("SELECT sensor_id, time FROM readings")
        return Counter((str(s), t) for s, t in await cur.fetchall())


async def wait_stored(database_url: str, expected: set[Key], within: float = 30.0) -> Counter[Key]:
    """Waits until every expected reading is in the database; returns what is stored."""
    deadline = time.monotonic() + within
    while True:
        have = await stored(database_url)
        missing = expected - set(have)
        if not missing:
            return have
        if time.monotonic() > deadline:
            sample = sorted(missing)[:5]
            raise AssertionError(f"{len(missing)} published readings not stored, e.g. {sample}")
        await asyncio.sleep(0.2)


def duplicates(have: Counter[Key]) -> list[tuple[Key, int]]:
    return sorted((k, n) for k, n in have.items() if n > 1)
