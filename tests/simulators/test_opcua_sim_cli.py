"""``coldtrace sim opcua`` as a real process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_sim_opcua_announces_its_endpoint_and_nodes() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "coldtrace",
            "sim",
            "opcua",
            "--port",
            "0",
            "--security",
            "None",
            "--duration",
            "0.2",
            "--scenario",
            "door-opening",
            "--scenario-unit",
            "fridge-1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    announced = json.loads(out.stdout.splitlines()[0])
    assert announced["endpoint"].startswith("opc.tcp://127.0.0.1:")
    assert announced["nodes"] == {
        "fridge-1": "ns=2;s=fridge-1.Temperature",
        "ultra-1": "ns=2;s=ultra-1.Temperature",
    }
