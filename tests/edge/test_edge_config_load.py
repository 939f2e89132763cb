"""The edge config: a YAML file plus environment, refused at start with the field named."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from edge.config import ConfigError, load_config
from edge.outbox import OverflowPolicy

GOOD = """
gateway_id: gw-berlin-1
cloud:
  cloud_url: https://cloud.example/
  token: secret-token
  max_batch_records: 2000
  linger: 0.5
outbox:
  path: {tmp}/outbox.db
  max_records: 100000
  max_bytes: 104857600
  high_water: 0.75
  overflow: block
health: {{port: 9200}}
clock: {{max_jump: PT1M}}
alarms:
  cloud_unreachable_after: 120
  on_delay: PT5M
  broker: {{host: 127.0.0.1, port: 1883}}
  sensors:
    fridge-1/t: {{low: 2.0, high: 8.0}}
    freezer-1/t: {{high: -15.0, on_delay: 60}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.yaml"
    path.write_text(text.format(tmp=tmp_path))
    return path


def test_a_complete_file_loads_into_typed_objects(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.gateway_id == "gw-berlin-1"
    uplink = config.cloud.uplink()
    assert uplink.token.get_secret_value() == "secret-token"
    assert uplink.linger == timedelta(milliseconds=500)
    assert str(uplink.cloud_url) == "https://cloud.example/"
    limits = config.outbox.limits()
    assert (limits.max_records, limits.high_water) == (100_000, 0.75)
    assert limits.overflow is OverflowPolicy.BLOCK
    assert config.outbox.path == tmp_path / "outbox.db"
    assert config.clock.max_jump == timedelta(minutes=1)
    assert config.alarms.sensors["freezer-1/t"].on_delay == timedelta(seconds=60)
    assert config.alarms.broker is not None
    assert config.alarms.broker.port == 1883
    assert config.health.port == 9200


def test_token_from_environment_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLDTRACE_EDGE_CLOUD__TOKEN", "from-env")
    config = load_config(write(tmp_path, GOOD))
    assert config.cloud.token.get_secret_value() == "from-env"
    assert config.cloud.max_batch_records == 2000  # the rest of the section is kept


def test_token_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("file-token\n")
    text = GOOD.replace("  token: secret-token", f"  token_file: {secret}")
    config = load_config(write(tmp_path, text))
    assert config.cloud.uplink().token.get_secret_value() == "file-token"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("max_bytes: 104857600", "max_bytes: 10"), "outbox.max_bytes"),
        (("high_water: 0.75", "high_water: 1.5"), "outbox.high_water"),
        (("overflow: block", "overflow: drop_oldest"), "outbox.overflow"),
        (("gateway_id: gw-berlin-1", "gateway_id: 'gw berlin'"), "gateway_id"),
        (("cloud_url: https://cloud.example/", "cloud_url: not a url"), "cloud.cloud_url"),
        (("  token: secret-token\n", ""), "cloud.token"),
        (("max_batch_records: 2000", "max_batch_records: 20000"), "cloud.max_batch_records"),
        (("{low: 2.0, high: 8.0}", "{low: 9.0, high: 8.0}"), "alarms.sensors.fridge-1/t"),
        (("health: {port: 9200}", "health: {port: 99999}"), "health.port"),
        (("clock: {max_jump: PT1M}", "clock: {max_jump: PT1M, jump: 3}"), "clock.jump"),
        (("linger: 0.5", "linger: 0"), "cloud.linger"),
    ],
)
def test_a_wrong_value_is_refused_naming_the_field(
    tmp_path: Path, change: tuple[str, str], field: str
) -> None:
    old, new = change
    text = GOOD.format(tmp=tmp_path)
    assert old in text
    path = tmp_path / "edge.yaml"
    path.write_text(text.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"  {field}: " in str(info.value)


def test_unreadable_token_file_names_it(tmp_path: Path) -> None:
    text = GOOD.replace("  token: secret-token", f"  token_file: {tmp_path}/missing")
    with pytest.raises(ConfigError, match=r"cloud: .*token_file .*missing cannot be read"):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(("text", "message"), [("[1, 2]", "mapping"), ("a: [", "not valid YAML")])
def test_not_a_config_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_the_command_refuses_a_wrong_config_with_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("high_water: 0.75", "high_water: 2"))
    proc = subprocess.run(
        [sys.executable, "-m", "coldtrace", "edge", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "outbox.high_water: Input should be less than 1" in proc.stderr


SOURCES = """
gateway_id: gw-1
cloud: {{cloud_url: "https://cloud.example", token: t}}
outbox: {{path: {tmp}/o.db}}
llrp:
  - {{reader_id: dock-reader-1, host: 10.0.0.5, antennas: [1, 2]}}
doors:
  - {{door_id: dock-1, reader_id: dock-reader-1, outside_antennas: [1], inside_antennas: [2]}}
mqtt:
  - name: broker-1
    broker_url: mqtt://127.0.0.1:1883
    client_id: gw-1-loggers
    decoders: [{{topic: "site/{{site}}/readings", format: coldtrace-json}}]
opcua:
  - name: plc-1
    endpoint: opc.tcp://10.0.0.9:4840
    nodes: {{"ns=2;s=Fridge1.Temp": fridge-1/t}}
"""


def test_sources_compose_from_their_modules(tmp_path: Path) -> None:
    from edge.cli import source_specs

    config = load_config(write(tmp_path, SOURCES))
    assert [s.name for s in source_specs(config)] == [
        "llrp:dock-reader-1", "mqtt:broker-1", "opcua:plc-1"
    ]  # fmt: skip
    assert config.doors[0].reader_id == "dock-reader-1"
    assert config.opcua[0].nodes == {"ns=2;s=Fridge1.Temp": "fridge-1/t"}


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("reader_id: dock-reader-1, outside", "reader_id: r9, outside", "  doors.0.reader_id: "),
        ("inside_antennas: [2]", "inside_antennas: [3]", "  doors.0: door 'dock-1' uses antennas"),
        ("host: 10.0.0.5, antennas", "host: 10.0.0.5, antenna", "llrp.0.antenna"),
        ("broker_url: mqtt://", "broker_url: http://", "mqtt.0.broker_url"),
        ("opc.tcp://10.0.0.9", "tcp://10.0.0.9", "opcua.0.endpoint"),
    ],
)
def test_a_wrong_source_section_is_refused(tmp_path: Path, old: str, new: str, field: str) -> None:
    text = SOURCES.format(tmp=tmp_path)
    assert old in text
    path = tmp_path / "edge.yaml"
    path.write_text(text.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert field in str(info.value)


def test_a_health_port_in_use_is_a_clear_start_failure(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        text = GOOD.replace("health: {{port: 9200}}", f"health: {{{{port: {port}}}}}")
        text = text.replace("  broker: {{host: 127.0.0.1, port: 1883}}\n", "")
        assert "broker" not in text
        path = write(tmp_path, text)
        proc = subprocess.run(
            [sys.executable, "-m", "coldtrace", "edge", "run", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 1
    assert "cannot start" in proc.stderr
