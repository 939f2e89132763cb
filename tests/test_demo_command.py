"""``coldtrace demo`` as a user runs it: a real process on the private services, stopped with
Ctrl-C (SIGINT). Readings, received pallets and the scenario's quarantine must be in the
database, and the dashboard must have answered while it ran."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from cloud.web.session import COOKIE
from coldtrace import demo_site
from coldtrace.cli import main

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _lines_until(proc: subprocess.Popen[str], pattern: str, timeout: float) -> dict[str, str]:
    """Reads stdout until a line matches ``pattern``; returns the banner's fields."""
    assert proc.stdout is not None
    fields: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        if line.startswith("demo: "):
            fields.setdefault("progress", "")
            fields["progress"] += line
        if m := re.match(r"\s+([A-Za-z' -]+?):\s+(\S+)", line):
            fields[m.group(1).strip()] = m.group(2)
        if re.search(pattern, line):
            return fields
    raise AssertionError(f"no line matching {pattern!r} within {timeout} s; got {fields}")


@pytest.fixture
def demo_database(demo_postgres_url: str) -> Iterator[str]:
    name = f"ct_demo_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(demo_postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql.encode()).fetchone()  # constant SQL from this file
        assert row is not None
        return int(row[0])


def test_demo_runs_the_scenario_and_stops_on_ctrl_c(
    demo_postgres_url: str, demo_database: str
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "coldtrace", "demo", "--port", "0", "--history", "3h",
         "--database-name", demo_database, "--duration", "120s", "--pallet-every", "4s"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        banner = _lines_until(proc, r"Ctrl-C stops everything", timeout=90)
        dashboard, token = banner["Dashboard"], banner["QA user 'demo-qa' token"]
        database = banner["Database"]
        for step in ("creating database", "migrating", "simulating", "starting the cloud"):
            assert f"demo: {step}" in banner["progress"], banner["progress"]
        public_key = banner["Ledger key"]
        assert urlsplit(database).path == f"/{demo_database}"
        # a pallet every 4 s; give the last one time to be read, matched and shown
        deadline = time.monotonic() + 60
        page = ""
        with httpx.Client(timeout=10) as browser:  # signs in: the cookie carries a session id
            signed_in = browser.post(f"{dashboard}/login", data={"token": token})
            assert signed_in.status_code == 303
            assert COOKIE in browser.cookies
            while time.monotonic() < deadline:
                page = browser.get(dashboard).text
                if page.count("data-receipt=") >= 3 and 'data-state="excursion"' in page:
                    break
                time.sleep(2)
        assert 'data-location="fridge-1" data-state="excursion"' in page
        assert page.count("data-receipt=") == 3
        assert "Insulin pen" in page  # a quarantined lot awaiting disposition
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()

    url = urlunsplit(urlsplit(demo_postgres_url)._replace(path=f"/{demo_database}"))
    with psycopg.connect(url) as conn:
        sensors = {str(r[0]) for r in conn.execute("SELECT DISTINCT sensor_id FROM readings")}
    # every unit's probe (and, once it has reported live, the LoRaWAN sensor's humidity)
    probes = {u.sensor_id for u in demo_site.UNITS}
    assert probes <= sensors <= probes | {"24e124136b502217/rh"}
    assert _count(url, "SELECT count(*) FROM readings WHERE sensor_id = 'fridge-1.t'") > 170
    assert _count(url, "SELECT count(*) FROM receipts WHERE outcome = 'complete'") == 2
    assert _count(url, "SELECT count(*) FROM receipts WHERE outcome = 'nothing'") == 1
    assert _count(url, "SELECT count(*) FROM balances WHERE location_id = 'dock-1'"
                       " AND quantity = 12") == 1  # fmt: skip
    assert _count(url, "SELECT count(*) FROM ledger_entries WHERE movement = 'quarantine'") == 2
    assert _count(url, "SELECT count(*) FROM excursions WHERE location_id = 'fridge-1'"
                       " AND level = 'action' AND ended_at IS NULL") == 1  # fmt: skip
    with pytest.raises(httpx.ConnectError):  # the cloud service stopped with the demo
        httpx.get(dashboard, timeout=2)
    # every entry, the stock loaded at start and the quarantines, signed by the demo's key
    assert _count(url, "SELECT count(*) FROM ledger_entries WHERE signature IS NULL") == 0
    verify = ["ledger", "verify", "--database-url", url, "--public-key", public_key]
    assert main(verify) == 0
