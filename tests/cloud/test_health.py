"""``coldtrace cloud serve`` as a real process, asked for /healthz."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from coldtrace.devservices import free_port

pytestmark = pytest.mark.integration


@contextmanager
def serve(database_url: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coldtrace",
            "cloud",
            "serve",
            "--database-url",
            database_url,
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(base + "/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if proc.stderr:
            proc.stderr.close()


def test_healthz_reports_the_storage_mode(database_url: str, storage_mode: str) -> None:
    with serve(database_url) as base:
        body = httpx.get(base + "/healthz", timeout=10).json()
    expected = "timescaledb-apache" if storage_mode == "timescaledb" else "postgresql"
    assert body["status"] == "ok"
    assert body["storage"] == expected


def test_healthz_says_unavailable_when_the_database_is_unreachable() -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    with serve(dead) as base:
        response = httpx.get(base + "/healthz", timeout=15)
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
