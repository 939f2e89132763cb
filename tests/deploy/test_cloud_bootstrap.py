"""The cloud database as deploy/cloud sets it up: the first-start script as the superuser, then
migrations as the owner, then the service and Grafana roles (issues 12.4 and 21.3).

The script runs against the private cluster with a database and role prefix of its own, so it
disturbs no other test; everything it made is dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from coldtrace.cli import main

pytestmark = pytest.mark.integration

SCRIPT = (
    Path(__file__).resolve().parents[2] / "deploy" / "cloud" / "initdb" / "10-coldtrace-roles.sh"
)


@pytest.fixture
def bootstrapped(postgres_url: str) -> Iterator[dict[str, str]]:
    name = f"ct_boot_{uuid.uuid4().hex[:8]}"
    server = urlsplit(postgres_url)
    env = {
        "PATH": os.environ["PATH"],
        "PGHOST": server.hostname or "127.0.0.1",
        "PGPORT": str(server.port),
        "POSTGRES_USER": server.username or "postgres",
        "COLDTRACE_DB": name,
        "COLDTRACE_ROLE_PREFIX": name,
        "COLDTRACE_OWNER_PASSWORD": "owner-pw",
        "COLDTRACE_SERVICE_PASSWORD": "service-pw",
        "COLDTRACE_READONLY_PASSWORD": "readonly-pw",
    }
    result = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True,
                            check=False, timeout=60)  # fmt: skip
    base = f"postgresql://{{}}@{server.hostname}:{server.port}/{name}"
    urls = {role: base.format(f"{name}_{role}") for role in ("owner", "service", "readonly")}
    try:
        assert result.returncode == 0, result.stderr
        yield {"prefix": name, **urls}
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for role in ("owner", "service", "readonly"):
                conn.execute(f'DROP ROLE IF EXISTS "{name}_{role}"')


def refused(url: str, statement: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(statement.encode())
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction):
            return True
    return False


def test_first_start_then_owner_migrations_give_the_three_roles_their_rights(
    bootstrapped: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    owner, service, reader = (
        bootstrapped["owner"],
        bootstrapped["service"],
        bootstrapped["readonly"],
    )
    with psycopg.connect(owner) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        assert row == (False,)
    args = ["db", "migrate", "--database-url", owner, "--role-prefix", bootstrapped["prefix"]]
    assert main(args) == 0
    assert "storage: timescaledb" in capsys.readouterr().out
    assert main(["ledger", "verify", "--database-url", owner]) == 0
    out = capsys.readouterr().out
    assert "GUARD" not in out
    with psycopg.connect(service, autocommit=True) as conn:
        conn.execute("INSERT INTO sites (site_id, name) VALUES ('s1', 'Site')")
    assert refused(service, "ALTER TABLE ledger_entries DISABLE TRIGGER USER")
    assert refused(service, "CREATE EXTENSION pgcrypto")
    with psycopg.connect(reader) as conn:
        assert conn.execute("SELECT site_id FROM sites").fetchall() == [("s1",)]
    assert refused(reader, "COPY (SELECT 1) TO PROGRAM 'id'")
    assert refused(reader, "CREATE TEMP TABLE t (x int)")  # read-only sessions, no TEMP
    assert refused(reader, "DELETE FROM sites")


def test_each_role_has_bounded_waits_of_its_own(bootstrapped: dict[str, str]) -> None:
    expected = {
        "service": ("15min", "10s", "5min"),
        "readonly": ("1min", "5s", "1min"),
        "owner": ("0", "5s", "10min"),
    }
    for role, bounds in expected.items():
        with psycopg.connect(bootstrapped[role]) as conn:
            got = conn.execute(
                "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'),"
                " current_setting('idle_in_transaction_session_timeout')"
            ).fetchone()
        assert got == bounds, role
