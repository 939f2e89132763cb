"""A real full disk: the agent runs on a 2 MiB tmpfs in a private mount namespace until ENOSPC.

Before: an append that hit ENOSPC raised, the agent exited 1, and every restart crashed again
(SQLite could not even open the file), even with the cloud back. Now: back-pressure and the alarm
``outbox/disk_full``, a restart on the full disk runs, and once the cloud acknowledges records
the space comes back (reserve, incremental vacuum, WAL truncation) and every reading arrives,
once, in order. The driver (``disk_full_driver.py``) prints what it saw as JSON.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coldtrace.devservices import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt || exit 1"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


async def on_a_small_disk(tmp_path: Path, driver: str, seconds: float) -> dict[str, Any]:
    """Runs ``python -m driver DIR`` on a 2 MiB tmpfs at DIR; returns the JSON it printed last."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    script = (
        f"mount -t tmpfs -o size=2m tmpfs {folder} && exec {sys.executable} -m {driver} {folder}"
    )
    done = await asyncio.to_thread(
        subprocess.run,
        ["unshare", "-rm", "sh", "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=seconds,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    out: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return out


@pytest.mark.skipif(
    not _namespaces_work(), reason="needs unprivileged user+mount namespaces (unshare -rm)"
)
async def test_enospc_is_back_pressure_and_recovers_by_itself(tmp_path: Path) -> None:
    out = await on_a_small_disk(tmp_path, "tests.edge.disk_full_driver", 110)
    filled, again, recovered = out["filled"], out["restarted_full"], out["recovered"]
    # The disk filled: back-pressure and alarms, the agent kept running, the source waiting.
    assert filled["reached"], out
    assert filled["disk_full"]
    assert {"outbox/disk_full", "outbox/full"} <= set(filled["alarms"])
    assert filled["error"] is None
    assert filled["stop_seconds"] < 5  # a stop on a full disk ends within its grace
    # A restart on the still-full disk runs (before: crashed at open, every time).
    assert again["reached"]
    assert again["error"] is None
    # The cloud came back: space reclaimed by itself, every reading once and in order.
    assert recovered["reached"], out
    assert recovered["error"] is None
    assert not recovered["disk_full"]
    assert recovered["alarms"] == []
    assert out["stored"] == 9000
    assert out["in_order_once"]
    assert out["seqs_contiguous"]


@pytest.mark.skipif(
    not _namespaces_work(), reason="needs unprivileged user+mount namespaces (unshare -rm)"
)
async def test_overflow_raise_has_room_again_when_something_else_frees_the_disk(
    tmp_path: Path,
) -> None:
    # Before, a refusal on a full filesystem stayed 'full' until an acknowledgement: with the
    # cloud away the agent never restarted the source, although the disk had room again.
    out = await on_a_small_disk(tmp_path, "tests.edge.disk_full_raise_driver", 60)
    assert out["refused"], out
    assert "filesystem full" in out["message"]
    assert out["full_when_refused"]
    assert out["disk_full_when_refused"]
    assert not out["full_after_retry"], out
    assert out["records"] == out["appended"] + 50
