"""The gateway broker's entrypoint turns device variables into logins and listeners (21.1)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

BROKER = Path(__file__).resolve().parents[2] / "deploy" / "balena" / "mosquitto"


def run(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """entrypoint.sh with a stand-in ``mosquitto`` that records the configuration it was given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "mosquitto"
    fake.write_text('#!/bin/sh\ncp "$2" "$BROKER_RUN_DIR/started-with.conf"\n')
    fake.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "BROKER_RUN_DIR": str(tmp_path / "run"),
        "BROKER_CONFIG_DIR": str(BROKER),
        **variables,
    }
    return subprocess.run(
        [str(BROKER / "entrypoint.sh")], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def accounts(tmp_path: Path) -> list[str]:
    lines = (tmp_path / "run" / "passwd").read_text().splitlines()
    return sorted(line.split(":", 1)[0] for line in lines)


def test_accounts_and_listeners_come_from_the_variables(tmp_path: Path) -> None:
    result = run(
        tmp_path, BROKER_EDGE_PASSWORD="e", BROKER_PANEL_PASSWORD="p",
        BROKER_GROUPS="freezers:f1 fridges:f:2", BROKER_BIND="192.0.2.10 127.0.0.1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert accounts(tmp_path) == [
        "coldtrace-edge", "coldtrace-health", "coldtrace-panel", "group-freezers",
        "group-fridges",
    ]  # fmt: skip
    assert (tmp_path / "run" / "passwd").stat().st_mode & 0o077 == 0
    conf = (tmp_path / "run" / "started-with.conf").read_text().splitlines()
    assert conf[-2:] == ["listener 1883 192.0.2.10", "listener 1883 127.0.0.1"]
    assert "include_dir /mosquitto/config/conf.d" in conf


def test_the_default_listens_everywhere_with_logins_only(tmp_path: Path) -> None:
    assert run(tmp_path, BROKER_EDGE_PASSWORD="e").returncode == 0
    conf = (tmp_path / "run" / "started-with.conf").read_text().splitlines()
    assert conf[-1] == "listener 1883 0.0.0.0"
    assert accounts(tmp_path) == ["coldtrace-edge", "coldtrace-health"]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({}, "BROKER_EDGE_PASSWORD"),
        ({"BROKER_EDGE_PASSWORD": "e", "BROKER_GROUPS": "Bad_Name:x"}, "bad group name"),
        ({"BROKER_EDGE_PASSWORD": "e", "BROKER_GROUPS": "fridges"}, "has no password"),
        ({"BROKER_EDGE_PASSWORD": "e", "BROKER_GROUPS": "fridges:"}, "has no password"),
    ],
)
def test_a_wrong_variable_stops_the_start_by_name(
    tmp_path: Path, variables: dict[str, str], message: str
) -> None:
    result = run(tmp_path, **variables)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "run" / "started-with.conf").exists()
