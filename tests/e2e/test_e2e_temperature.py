"""Temperature path, all real processes: simulators → ``coldtrace edge run`` → cloud → database.

``coldtrace sim opcua`` serves two fridges' probes, ``coldtrace sim mqtt`` publishes a plain
JSON logger, a LoRaWAN (ChirpStack v4, temperature and humidity) freezer and a Tasmota room in
local time, 60 times faster than real time. The edge agent reads both through its OPC-UA and
MQTT sources, commits to its outbox and uplinks to ``coldtrace cloud serve`` on the private
TimescaleDB. Independent witnesses record what the simulators published; afterwards the
``readings`` table holds each of those readings exactly once, by sensor and device time.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.checks import (
    edge_source_records,
    expected_readings,
    opcua_differences,
    wait_source_records,
)
from tests.e2e.rig import TemperatureRig, duplicates, stored, wait_stored
from tests.e2e.witness import MqttWitness, OpcUaWitness, settle

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


async def test_every_published_reading_is_stored_once(rig: TemperatureRig) -> None:
    await rig.register()
    site = rig.site()
    await rig.start_cloud()
    opcua_args = [*rig.sim_args(site, 10), "--port", "0", "--update-interval", "0.2",
                  "--security", "None"]  # fmt: skip
    opcua, info = await rig.simulator("opcua", opcua_args)
    endpoint = str(info["endpoint"])
    nodes = {f"ns=2;s={u}.Temperature": s for u, s in rig.opcua_units.items()}
    async with (
        OpcUaWitness(endpoint, nodes) as opcua_seen,
        MqttWitness(rig.mqtt_url, rig.decoders()) as mqtt_seen,
    ):
        await rig.start_edge(rig.edge_config(endpoint))
        await wait_source_records(rig.health_port, "mqtt:site-broker", 1)  # subscribed
        mqtt_args = [*rig.sim_args(site, 6), "--broker", rig.mqtt_url]
        mqtt, _ = await rig.simulator("mqtt", mqtt_args)
        assert await mqtt.wait(30) == 0, mqtt.fail("sim mqtt failed")
        assert await opcua.wait(30) == 0, opcua.fail("sim opcua failed")
        await settle(lambda: mqtt_seen.messages + len(opcua_seen.keys()))
        published = mqtt_seen.readings()
        opcua_keys = opcua_seen.keys()
        end = opcua_seen.last_arrival()
        final_moments = opcua_seen.arrived_between(end - 1.0, end)
    expected = await expected_readings(rig.database_url, published, opcua_keys, rig)
    await wait_stored(rig.database_url, expected - final_moments)
    have = await stored(rig.database_url)
    assert duplicates(have) == []
    mqtt_keys = {(r.sensor_id, r.time) for r in published}
    assert {k for k in have if k[0] in rig.mqtt_sensors} == mqtt_keys
    # The OPC-UA values as the witness saw them, but for the server's last notifications,
    # which either subscription can miss when the simulator exits (tests/e2e/checks.py).
    opcua_stored = {k for k in have if k[0] not in rig.mqtt_sensors}
    invented, lost = opcua_differences(set(opcua_keys), opcua_stored, final_moments)
    assert invented == set(), sorted(invented)[:5]
    assert lost == set(), sorted(lost)[:5]
    per_sensor = Counter(sensor for sensor, _ in expected)
    assert set(per_sensor) == set(rig.opcua_units.values()) | rig.mqtt_sensors
    # 6 simulated minutes of MQTT: 36 plain readings, 12 of the others; OPC-UA every 0.2 s.
    assert per_sensor["fridge-c.t"] >= 30
    assert min(per_sensor[s] for s in rig.opcua_units.values()) >= 25
    assert await edge_source_records(rig.health_port, "opcua:opcua-sim") > 50
    assert rig.edge is not None
    assert await rig.edge.terminate() == 0  # a clean stop after SIGTERM
