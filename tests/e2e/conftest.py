"""Process fixtures of the end-to-end tests (marker ``e2e``).

``rig`` is a :class:`tests.e2e.rig.TemperatureRig` on a fresh TimescaleDB database and the
private Mosquitto, with a gateway registered through ``coldtrace cloud gateway add``; every
process the test started through it (cloud, edge agent, simulators) is stopped at teardown, even
when the test failed half-way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.rig import TemperatureRig


@pytest.fixture
async def rig(tmp_path: Path, timescale_url: str, mqtt_url: str) -> AsyncIterator[TemperatureRig]:
    made = TemperatureRig(tmp_path, timescale_url, mqtt_url)
    try:
        yield made
    finally:
        await made.stop_all()
