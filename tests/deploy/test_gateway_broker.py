"""The gateway broker's policy keeps the outbox's promise (issue 21.1).

The broker here runs deploy/balena/mosquitto's policy file and ACL verbatim (devservices with
``accounts``), as the balena image does. With Mosquitto's defaults (1,000 queued messages per
client) 2,000 of these 3,000 messages would be dropped while the edge is down.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from coldtrace.devservices import GATEWAY_BROKER, MosquittoService
from edge.sources.mqtt import MqttSource
from protocols.records import DeviceState
from tests.support.temperature_sources import (
    Collected,
    broker_address,
    collect_until,
    index_of,
    json_reading,
    mqtt_config,
    settle,
    wait_status,
)

pytestmark = pytest.mark.integration

ACCOUNTS = {
    "coldtrace-health": "health-secret",
    "coldtrace-edge": "edge-secret",
    "coldtrace-panel": "panel-secret",
    "group-fridges": "fridges-secret",
    "group-freezers": "freezers-secret",
}
OUTAGE_MESSAGES = 3000


@pytest.fixture
def gateway_broker() -> Iterator[MosquittoService]:
    directory = Path(tempfile.mkdtemp(prefix="coldtrace-gw-broker-", dir="/var/tmp"))
    directory.chmod(0o755)
    service = MosquittoService(directory, MosquittoService.default().user, accounts=dict(ACCOUNTS))
    service.start()
    try:
        yield service
    finally:
        service.stop()
        shutil.rmtree(directory, ignore_errors=True)


class Client:
    """A paho MQTT 5 client that logs in, for the ACL checks and as a group of loggers."""

    def __init__(self, url: str, user: str | None, password: str | None) -> None:
        self.connected = threading.Event()
        self.reason: str | None = None
        self.received: list[str] = []
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
        )
        if user is not None:
            self._client.username_pw_set(user, password)
        self._client.on_connect = self._on_connect
        self._client.on_message = lambda _c, _u, msg: self.received.append(msg.topic)
        host, port = broker_address(url)
        self._client.connect(host, port)
        self._client.loop_start()
        assert self.connected.wait(10)

    def _on_connect(self, _c: object, _u: object, _f: object, reason: object, _p: object) -> None:
        self.reason = str(reason)
        self.connected.set()

    def publish_all(self, messages: list[tuple[str, str]]) -> None:
        infos = [self._client.publish(t, p, qos=1) for t, p in messages]
        for info in infos:
            info.wait_for_publish(timeout=20)
            assert info.is_published()

    def subscribe(self, topic: str) -> None:
        self._client.subscribe(topic, qos=1)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def test_the_policy_file_is_the_one_the_image_ships() -> None:
    dockerfile = (GATEWAY_BROKER / "Dockerfile").read_text()
    assert "COPY deploy/balena/mosquitto/conf.d/coldtrace.conf" in dockerfile
    assert "acl" in dockerfile
    policy = (GATEWAY_BROKER / "conf.d" / "coldtrace.conf").read_text()
    for line in ("allow_anonymous false", "max_queued_messages 200000", "persistence true"):
        assert line in policy.splitlines()


@pytest.mark.parametrize(("password", "healthy"), [("health-secret", True), ("wrong", False)])
def test_the_image_health_check_logs_in_and_reads_the_uptime(
    gateway_broker: MosquittoService, tmp_path: Path, password: str, healthy: bool
) -> None:
    (tmp_path / "health").write_text(password)
    env = {
        "PATH": "/usr/bin:/bin",
        "BROKER_RUN_DIR": str(tmp_path),
        "BROKER_PORT": str(gateway_broker.port),
        "BROKER_BIND": "127.0.0.1 192.0.2.1",
    }
    check = subprocess.run([str(GATEWAY_BROKER / "healthcheck.sh")], env=env,
                           capture_output=True, timeout=30, check=False)  # fmt: skip
    assert (check.returncode == 0) is healthy, check.stderr


def test_logins_and_topics_are_enforced(gateway_broker: MosquittoService) -> None:
    url = gateway_broker.url
    for user, password in ((None, None), ("group-fridges", "wrong"), ("nobody", "x")):
        refused = Client(url, user, password)
        assert refused.reason == "Not authorized", (user, refused.reason)
        refused.close()
    edge = Client(url, "coldtrace-edge", ACCOUNTS["coldtrace-edge"])
    panel = Client(url, "coldtrace-panel", ACCOUNTS["coldtrace-panel"])
    fridges = Client(url, "group-fridges", ACCOUNTS["group-fridges"])
    try:
        assert edge.reason == panel.reason == fridges.reason == "Success"
        edge.subscribe("sensors/#")
        panel.subscribe("sensors/#")  # the ACL gives the panel no sensor topics
        fridges.subscribe("coldtrace/alarms/#")  # nor a logger group the alarms
        asyncio.run(asyncio.sleep(0.3))
        fridges.publish_all([
            ("sensors/group-fridges/f1/readings", "own group"),
            ("sensors/group-freezers/z1/readings", "another group's topic"),
            ("coldtrace/alarms/gw/x", "a fake alarm"),
        ])  # fmt: skip
        edge.publish_all([("coldtrace/alarms/gw/outbox", "alarm")])
        asyncio.run(asyncio.sleep(0.5))
        assert edge.received == ["sensors/group-fridges/f1/readings"]
        assert panel.received == []
        assert fridges.received == []
    finally:
        for client in (edge, panel, fridges):
            client.close()


async def test_an_edge_outage_across_a_broker_restart_loses_nothing(
    gateway_broker: MosquittoService,
) -> None:
    url = gateway_broker.url
    prefix = "sensors/group-fridges"
    config = mqtt_config(
        url, prefix, client_id=f"coldtrace-edge-{uuid.uuid4().hex[:6]}", in_flight=50,
        username="coldtrace-edge", password=ACCOUNTS["coldtrace-edge"],
    )  # fmt: skip
    got = Collected()
    async with MqttSource(config) as source:  # the edge subscribes: its persistent session
        await wait_status(aiter(source), got, DeviceState.ONLINE)
    # the edge is down: the loggers keep publishing
    loggers = Client(url, "group-fridges", ACCOUNTS["group-fridges"])
    topic = f"{prefix}/s/readings"
    await asyncio.to_thread(
        loggers.publish_all, [(topic, json_reading(i)) for i in range(OUTAGE_MESSAGES)]
    )
    loggers.close()
    # and the broker restarts meanwhile (a container update): SIGTERM saves its store
    await asyncio.to_thread(gateway_broker.stop)
    await asyncio.to_thread(gateway_broker.start)
    got = Collected()
    async with MqttSource(config) as source:  # the edge is back on the same session
        records = aiter(source)
        await collect_until(records, got, OUTAGE_MESSAGES, limit=60)
        await settle(records, quiet=0.5)
    counts = Counter(index_of(r) for r in got.readings)
    assert sorted(counts) == list(range(OUTAGE_MESSAGES)), "messages were lost at the broker"
    assert [i for i, n in counts.items() if n > 1] == []
