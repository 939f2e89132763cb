"""``coldtrace cloud serve`` as a real process: /healthz, and what the service runs beside it."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import psycopg
import pytest

from coldtrace.devservices import free_port
from tests.support.cloud_processes import serve

pytestmark = pytest.mark.integration


def test_healthz_reports_the_storage_mode(database_url: str, storage_mode: str) -> None:
    with serve(database_url) as cloud:
        body = httpx.get(cloud.base_url + "/healthz", timeout=10).json()
    expected = "timescaledb-apache" if storage_mode == "timescaledb" else "postgresql"
    assert body["status"] == "ok"
    assert body["storage"] == expected


def test_healthz_says_unavailable_when_the_database_is_unreachable() -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    with serve(dead, "--no-processor") as cloud:
        response = httpx.get(cloud.base_url + "/healthz", timeout=15)
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


@pytest.fixture
def webhook() -> Iterator[tuple[str, queue.Queue[dict[str, object]]]]:
    received: queue.Queue[dict[str, object]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.put(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="webhook")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_serve_delivers_alerts_to_the_configured_webhook(
    timescale_url: str,
    webhook: tuple[str, queue.Queue[dict[str, object]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, received = webhook
    monkeypatch.setenv("COLDTRACE_CLOUD_ALERTS__WEBHOOK_URL", url)
    monkeypatch.setenv("COLDTRACE_CLOUD_ALERTS__POLL_INTERVAL", "PT0.2S")
    with psycopg.connect(timescale_url) as conn:
        conn.execute(
            "INSERT INTO alerts (at, kind, severity, message, dedup_key)"
            " VALUES (%s, 'no_data', 'critical', 'fridge-1 silent', 'wiring-test')",
            (datetime(2026, 1, 1, tzinfo=UTC),),
        )
        conn.execute("INSERT INTO alert_outbox (alert_id) SELECT alert_id FROM alerts")
    with serve(timescale_url):
        payload = received.get(timeout=20)
    assert payload["message"] == "fridge-1 silent"
    assert payload["severity"] == "critical"
