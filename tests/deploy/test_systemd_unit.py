"""The Debian unit of the edge agent passes ``systemd-analyze verify`` (issue 21.5)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coldtrace.cli import build_parser

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "debian" / "coldtrace-edge.service"
INSTALLED = "/opt/coldtrace/venv/bin/coldtrace"


def exec_start() -> list[str]:
    lines = [s for s in UNIT.read_text().splitlines() if s.startswith("ExecStart=")]
    assert len(lines) == 1
    return shlex.split(lines[0].removeprefix("ExecStart="))


def test_the_unit_starts_an_existing_coldtrace_command() -> None:
    command = exec_start()
    assert command[0] == INSTALLED
    build_parser().parse_args(command[1:])  # exits, failing the test, when unknown


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: point it at this virtualenv's coldtrace,
    # the only line changed (the unit is written for the documented install prefix)
    local = Path(sys.executable).parent / "coldtrace"
    assert local.exists()
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(INSTALLED, str(local)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
