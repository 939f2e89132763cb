"""deploy/cloud/docker-compose.ha.yml: the replicated database for production runs the Patroni
file of the failover tests, and what the file wires together holds up offline (issues 19.1, 21).

Without an engine the cluster is not started here; `coldtrace services start --ha` and
tests/cloud/test_failover_patroni.py run the same Patroni file on the same Debian packages. Here:
Patroni's own validator accepts that file with each member's variables from the compose file,
HAProxy accepts its file and checks the members the compose file has, the first-start job makes
the roles once on whichever host is the primary, and the connection strings name every member.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from coldtrace import ha
from coldtrace.devservices import free_port
from tests.deploy.dockerfiles import Dockerfile
from tests.deploy.test_compose_files import resolved

ROOT = Path(__file__).resolve().parents[2]
HA_COMPOSE = ROOT / "deploy" / "cloud" / "docker-compose.ha.yml"
PATRONI = ROOT / "deploy" / "cloud" / "patroni"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    found: dict[str, Any] = resolved(HA_COMPOSE)["services"]
    return found


def members(services: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Patroni members (services that run Patroni) → their environment."""
    return {
        name: service["environment"]
        for name, service in services.items()
        if "PATRONI_NAME" in service.get("environment", {})
    }


def test_the_image_runs_the_patroni_file_of_the_failover_tests(services: dict[str, Any]) -> None:
    dockerfile = Dockerfile.read(PATRONI / "Dockerfile")
    assert dockerfile.destination_of("/etc/patroni/patroni.yml") == (
        "deploy/cloud/patroni/patroni.yml",
        "/etc/patroni/patroni.yml",
    )
    assert ROOT / "deploy/cloud/patroni/patroni.yml" == ha.PATRONI_CONFIG
    assert dockerfile.cmd == ["patroni", "/etc/patroni/patroni.yml"]
    found = members(services)
    assert sorted(found) == ["db0", "db1"]
    for name, env in found.items():
        assert env["PATRONI_NAME"] == name
        assert services[name].get("command") is None  # the image's CMD: Patroni on that file


def _unresolvable_here(line: str, names: set[str]) -> bool:
    """A complaint that only says a compose service name or a busy port is not usable here."""
    if "Name or service not known" in line or "Temporary failure in name resolution" in line:
        return any(f" {name}:" in line for name in names)
    return "is already in use" in line


@pytest.mark.skipif(shutil.which("patroni") is None, reason="apt-get install patroni")
def test_patroni_validates_its_file_with_each_members_variables(
    services: dict[str, Any],
) -> None:
    # the members' binaries are the image's Debian PostgreSQL 15, as on this machine
    for name, env in members(services).items():
        assert Path(env["PATRONI_POSTGRESQL_BIN_DIR"]).is_dir(), env["PATRONI_POSTGRESQL_BIN_DIR"]
        check = subprocess.run(
            ["patroni", "--validate-config", str(ha.PATRONI_CONFIG)],
            env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        complaints = [
            line
            for line in (check.stdout + check.stderr).splitlines()
            if line.strip() and not _unresolvable_here(line, set(services))
        ]
        assert complaints == [], f"{name}: {complaints}"


@pytest.mark.skipif(shutil.which("patroni") is None, reason="apt-get install patroni")
def test_the_validator_catches_a_member_without_credentials(services: dict[str, Any]) -> None:
    env = {
        k: v for k, v in members(services)["db0"].items() if not k.startswith("PATRONI_SUPERUSER")
    }
    env = {k: v for k, v in env.items() if not k.startswith("PATRONI_REPLICATION")}
    check = subprocess.run(
        ["patroni", "--validate-config", str(ha.PATRONI_CONFIG)],
        env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert check.returncode != 0
    assert "authentication" in check.stdout + check.stderr


def test_the_members_reach_the_etcd_members_of_the_file(services: dict[str, Any]) -> None:
    etcd = sorted(name for name, s in services.items() if "ETCD_NAME" in s.get("environment", {}))
    assert len(etcd) == 3  # a majority survives the loss of one
    cluster = services[etcd[0]]["environment"]["ETCD_INITIAL_CLUSTER"]
    assert sorted(part.split("=")[0] for part in cluster.split(",")) == etcd
    for env in members(services).values():
        assert sorted(h.split(":")[0] for h in env["PATRONI_ETCD3_HOSTS"].split(",")) == etcd
        assert env["PATRONI_RESTAPI_PASSWORD"], "switchovers need a password"


def test_the_service_reaches_whichever_member_is_primary(services: dict[str, Any]) -> None:
    names = sorted(members(services))
    for service, role in (("migrate", "owner"), ("cloud", "service"), ("processor", "service")):
        url = urlsplit(services[service]["environment"]["COLDTRACE_CLOUD_DATABASE_URL"])
        assert url.username == f"coldtrace_{role}", service
        hosts = sorted(h.split(":")[0] for h in url.netloc.split("@")[1].split(","))
        assert hosts == names, service
        assert parse_qs(url.query)["target_session_attrs"] == ["read-write"], service
    first = services["first-start"]["environment"]
    assert sorted(first["PGHOST"].split(",")) == names
    assert first["PGTARGETSESSIONATTRS"] == "read-write"
    grafana = services["grafana"]["environment"]
    assert grafana["COLDTRACE_GRAFANA_DB_USER"] == "coldtrace_readonly"
    assert grafana["COLDTRACE_GRAFANA_DB_HOST"] == "db:5433"  # HAProxy: any running member
    assert "ports" not in services["cloud"], "only the TLS proxy may be reached from outside"


def test_what_the_services_start_is_in_their_image(services: dict[str, Any]) -> None:
    dockerfile = Dockerfile.read(PATRONI / "Dockerfile")
    for name, service in services.items():
        command = service.get("command") or []
        if service.get("image") != "coldtrace-database:0.1.0" or not command:
            continue
        program = command[0]
        if program.startswith("/"):
            copied = dockerfile.destination_of(program)
            assert copied is not None, f"{name}: {program} is not copied into the image"
            assert (ROOT / copied[0]).stat().st_mode & 0o111, f"{copied[0]} is not executable"
        else:
            installed = {w for run in dockerfile.last_stage_runs for w in run.split()}
            package = {"etcd": "etcd-server"}.get(program, program)
            assert package in installed, f"{name}: {program} is not installed"
        for argument in command[1:]:
            if argument.startswith("/etc/"):
                assert dockerfile.destination_of(argument), f"{name}: {argument} is not copied"


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="apt-get install haproxy")
def test_haproxy_accepts_its_file_and_checks_the_members(services: dict[str, Any]) -> None:
    config = PATRONI / "haproxy.cfg"
    check = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True,
                           text=True, timeout=60, check=False)  # fmt: skip
    assert check.returncode == 0, check.stderr
    warnings = [line for line in check.stderr.splitlines() if "[WARNING]" in line]
    assert all("could not resolve address" in line for line in warnings), warnings
    servers = [line.split() for line in config.read_text().splitlines()
               if line.strip().startswith("server ")]  # fmt: skip
    api_ports = {env["PATRONI_RESTAPI_LISTEN"].rsplit(":", 1)[1] for env in
                 members(services).values()}  # fmt: skip
    assert sorted({s[1] for s in servers}) == sorted(members(services))
    for server in servers:
        assert server[2] == f"{server[1]}:5432"
        assert server[server.index("port") + 1] in api_ports  # Patroni's REST API answers


@pytest.fixture
def first_start_env(postgres_url: str) -> Iterator[dict[str, str]]:
    name = f"ct_ha_{uuid.uuid4().hex[:8]}"
    server = urlsplit(postgres_url)
    env = {
        "PATH": os.environ["PATH"],
        # a member that does not answer first, as a dead or starting member would
        "PGHOST": f"127.0.0.1,{server.hostname}",
        "PGPORT": f"{free_port()},{server.port}",
        "PGTARGETSESSIONATTRS": "read-write",
        "PGUSER": server.username or "postgres",
        "PGCONNECT_TIMEOUT": "3",
        "COLDTRACE_DB": name,
        "COLDTRACE_ROLE_PREFIX": name,
        "COLDTRACE_OWNER_PASSWORD": "owner-pw",
        "COLDTRACE_SERVICE_PASSWORD": "service-pw",
        "COLDTRACE_READONLY_PASSWORD": "readonly-pw",
        "COLDTRACE_ROLES_SCRIPT": str(ROOT / "deploy/cloud/initdb/10-coldtrace-roles.sh"),
        "COLDTRACE_FIRST_START_TRIES": "3",
    }
    try:
        yield env
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for role in ("owner", "service", "readonly"):
                conn.execute(f'DROP ROLE IF EXISTS "{name}_{role}"')


def _first_start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PATRONI / "first-start.sh")], env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


@pytest.mark.integration
def test_first_start_makes_the_roles_once_on_the_primary(
    first_start_env: dict[str, str], postgres_url: str
) -> None:
    first = _first_start(first_start_env)
    assert first.returncode == 0, first.stderr
    name = first_start_env["COLDTRACE_DB"]
    with psycopg.connect(postgres_url) as conn:
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        roles = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s ORDER BY 1", (f"{name}_%",)
        ).fetchall()
    assert owner == (f"{name}_owner",)
    assert [r[0] for r in roles] == [f"{name}_owner", f"{name}_readonly", f"{name}_service"]
    again = _first_start(first_start_env)  # every `docker compose up` runs it again
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout


@pytest.mark.integration
def test_first_start_gives_up_by_name_without_a_primary(first_start_env: dict[str, str]) -> None:
    env = {**first_start_env, "PGHOST": "127.0.0.1", "PGPORT": str(free_port())}
    result = _first_start(env)
    assert result.returncode == 1
    assert "no writable primary" in result.stderr
