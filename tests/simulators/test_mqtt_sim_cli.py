"""``coldtrace sim mqtt`` as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

pytestmark = pytest.mark.integration


def test_sim_mqtt_publishes_the_site_at_an_accelerated_pace(mqtt_url: str, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    site = {
        "site_id": f"site-{tag}",
        "units": [
            {
                "unit_id": "fridge-x",
                "name": "Fridge X",
                "profile": "refrigerated",
                "logger": {"transport": "mqtt", "shape": "plain", "device_id": f"x-{tag}"},
            }
        ],
    }
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    got: list[bytes] = []
    lock = threading.Lock()
    parts = urlsplit(mqtt_url)
    sub = mqtt.Client(CallbackAPIVersion.VERSION2)

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            got.append(bytes(msg.payload))

    sub.on_message = on_message
    sub.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    sub.subscribe(f"coldtrace/site-{tag}/#", qos=1)
    sub.loop_start()
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "coldtrace",
                "sim",
                "mqtt",
                "--broker",
                mqtt_url,
                "--site",
                str(tmp_path / "site.yaml"),
                "--start",
                "2026-11-25T08:00:00+00:00",
                "--time-scale",
                "600",
                "--duration",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    finally:
        sub.loop_stop()
        sub.disconnect()
    announced = json.loads(out.stdout.splitlines()[0])
    assert announced["topics"] == {"fridge-x": f"coldtrace/site-{tag}/x-{tag}/reading"}
    times = [json.loads(p)["time"] for p in got]
    assert len(times) >= 8  # ~10 simulated minutes at one reading a minute
    assert times[0] == "2026-11-25T08:01:00.000Z"
    assert times == sorted(times)


def test_sim_rejects_a_scenario_without_its_unit() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "coldtrace", "sim", "mqtt", "--scenario", "power-cut"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode != 0
    assert "--scenario needs --scenario-unit" in out.stderr
