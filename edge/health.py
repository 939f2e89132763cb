"""``/healthz`` and Prometheus ``/metrics`` of the edge agent, on a small asyncio HTTP server.

Both are computed at request time from a :class:`Snapshot` the agent provides, so nothing is
sampled on a timer and a scrape always sees the current outbox and uplink. The registry belongs
to the server (no global state), so several agents can run in one process (tests).

``/healthz`` answers 200 with ``"status": "ok"`` or ``"degraded"`` (an alarm is active, a source
is not running, the cloud is unreachable) while the agent runs, and 503 once it is stopping: a
container orchestrator should restart a dead agent, not one waiting for its cloud.

The listener binds 127.0.0.1 unless configured otherwise; with a ``token`` every request must
carry ``Authorization: Bearer <token>`` (compared in constant time) or gets 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge.outbox import OutboxStats
from edge.uplink import UplinkStatus

log = logging.getLogger(__name__)

_MAX_REQUEST_HEAD = 8192


@dataclass
class SourceHealth:
    """What the supervisor knows about one source."""

    name: str
    state: str = "starting"
    """starting, running, backoff, failed (permanent) or stopped."""
    records: int = 0
    errors: int = 0
    restarts: int = 0
    last_seen: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class Snapshot:
    gateway_id: str
    now: datetime
    stopping: bool
    sources: tuple[SourceHealth, ...]
    outbox: OutboxStats
    uplink: UplinkStatus
    unreachable_seconds: float
    alarms: dict[str, str] = field(default_factory=dict)
    clock_jumps: int = 0
    behind_seconds: float = 0.0
    """Age of the oldest record the cloud has not acknowledged (monotonic, ``edge.lag``)."""

    @property
    def degraded(self) -> bool:
        return bool(
            self.alarms
            or self.unreachable_seconds > 0
            or any(s.state != "running" for s in self.sources)
        )

    def health(self) -> dict[str, object]:
        oldest = self.outbox.oldest_appended_at
        ttf = self.outbox.time_to_full
        return {
            "status": "stopping" if self.stopping else "degraded" if self.degraded else "ok",
            "gateway_id": self.gateway_id,
            "sources": {
                s.name: {
                    "state": s.state,
                    "records": s.records,
                    "errors": s.errors,
                    "restarts": s.restarts,
                    "last_seen": s.last_seen.isoformat() if s.last_seen else None,
                    "last_error": s.last_error,
                }
                for s in self.sources
            },
            "outbox": {
                "boot_id": str(self.outbox.boot_id),
                "records": self.outbox.records,
                "bytes": self.outbox.bytes,
                "last_seq": self.outbox.last_seq,
                "disk_bytes": self.outbox.disk_bytes,
                "disk_full": self.outbox.disk_full,
                "duplicates_dropped": self.outbox.duplicates_dropped,
                "fill_ratio": round(self.outbox.fill_ratio, 6),
                "oldest_age_seconds": (self.now - oldest).total_seconds() if oldest else 0.0,
                "time_to_full_seconds": ttf.total_seconds() if ttf else None,
                "replay": {
                    "window_seconds": self.outbox.replay_window.total_seconds(),
                    "records": self.outbox.retained,
                    "bytes": self.outbox.retained_bytes,
                    "from_seq": self.outbox.retained_from_seq,
                    "since": _iso(self.outbox.replay_since),
                },
            },
            "uplink": {
                "last_success": _iso(self.uplink.last_success),
                "unreachable_seconds": self.unreachable_seconds,
                "behind_seconds": self.behind_seconds,
                "consecutive_failures": self.uplink.consecutive_failures,
                "last_error": self.uplink.last_error,
                "records_acked": self.uplink.records_acked,
                "dead_lettered": self.uplink.dead_lettered,
            },
            "alarms": self.alarms,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class _AgentCollector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        yield from _source_metrics(snap)
        yield from _outbox_metrics(snap)
        yield from _uplink_metrics(snap)
        alarms = GaugeMetricFamily(
            "coldtrace_edge_alarm_active", "Local alarms currently raised", labels=["alarm"]
        )
        for key in snap.alarms:
            alarms.add_metric([key], 1)
        yield alarms
        yield CounterMetricFamily(
            "coldtrace_edge_clock_jumps", "Gateway wall-clock jumps detected", snap.clock_jumps
        )


def _source_metrics(snap: Snapshot) -> Iterator[Metric]:
    p = "coldtrace_edge_source"
    records = CounterMetricFamily(f"{p}_records", "Records committed", labels=["source"])
    errors = CounterMetricFamily(f"{p}_errors", "Source failures", labels=["source"])
    restarts = CounterMetricFamily(f"{p}_restarts", "Source restarts", labels=["source"])
    up = GaugeMetricFamily(f"{p}_up", "1 while the source runs", labels=["source"])
    seen = GaugeMetricFamily(
        f"{p}_last_seen_timestamp_seconds", "Last commit from the source", labels=["source"]
    )
    for s in snap.sources:
        records.add_metric([s.name], s.records)
        errors.add_metric([s.name], s.errors)
        restarts.add_metric([s.name], s.restarts)
        up.add_metric([s.name], 1 if s.state == "running" else 0)
        if s.last_seen is not None:
            seen.add_metric([s.name], s.last_seen.timestamp())
    yield from (records, errors, restarts, up, seen)


def _outbox_metrics(snap: Snapshot) -> Iterator[Metric]:
    p, o = "coldtrace_edge_outbox", snap.outbox
    oldest = (snap.now - o.oldest_appended_at).total_seconds() if o.oldest_appended_at else 0.0
    yield GaugeMetricFamily(f"{p}_records", "Records waiting for the cloud", o.records)
    yield GaugeMetricFamily(f"{p}_bytes", "Bytes waiting for the cloud", o.bytes)
    yield GaugeMetricFamily(f"{p}_fill_ratio", "Fill of the tighter bound (0-1)", o.fill_ratio)
    yield GaugeMetricFamily(f"{p}_oldest_age_seconds", "Age of the oldest record", oldest)
    yield GaugeMetricFamily(f"{p}_last_seq", "Last sequence number given", o.last_seq)
    yield GaugeMetricFamily(
        f"{p}_disk_bytes", "Pages in use in the file plus the WAL", o.disk_bytes
    )
    yield GaugeMetricFamily(f"{p}_disk_full", "1 while the filesystem is full", int(o.disk_full))
    yield CounterMetricFamily(
        f"{p}_duplicates_dropped",
        "Redelivered readings not committed again (since start)",
        o.duplicates_dropped,
    )
    if o.time_to_full is not None:
        yield GaugeMetricFamily(
            f"{p}_time_to_full_seconds", "At the recent rate", o.time_to_full.total_seconds()
        )
    yield GaugeMetricFamily(
        f"{p}_replay_records", "Acknowledged records kept for a restored cloud", o.retained
    )
    covered = (snap.now - o.replay_since).total_seconds() if o.replay_since else 0.0
    yield GaugeMetricFamily(
        f"{p}_replay_covered_seconds",
        "How far back a restored cloud can be refilled (age of the oldest kept ack)",
        covered,
    )


def _uplink_metrics(snap: Snapshot) -> Iterator[Metric]:
    p, u = "coldtrace_edge_uplink", snap.uplink
    o = snap.outbox
    lag = (snap.now - o.oldest_appended_at).total_seconds() if o.oldest_appended_at else 0.0
    yield GaugeMetricFamily(f"{p}_lag_seconds", "How far the cloud is behind", lag)
    yield GaugeMetricFamily(
        f"{p}_unreachable_seconds", "How long sending has failed", snap.unreachable_seconds
    )
    yield GaugeMetricFamily(
        f"{p}_behind_seconds",
        "Age of the oldest unacknowledged record, monotonic",
        snap.behind_seconds,
    )
    if u.last_success is not None:
        yield GaugeMetricFamily(
            f"{p}_last_success_timestamp_seconds", "Last acknowledged batch",
            u.last_success.timestamp(),
        )  # fmt: skip
    yield CounterMetricFamily(f"{p}_records_acked", "Records the cloud stored", u.records_acked)
    yield CounterMetricFamily(f"{p}_dead_letters", "Records refused by the cloud", u.dead_lettered)
    attempts = CounterMetricFamily(f"{p}_attempts", "Send attempts by outcome", labels=["outcome"])
    for outcome, count in sorted(u.outcomes.items()):
        attempts.add_metric([outcome], count)
    yield attempts


class HealthServer:
    """Serves ``/healthz`` and ``/metrics`` until cancelled; ``port`` is known after ``start``."""

    def __init__(
        self,
        host: str,
        port: int,
        snapshot: Callable[[], Snapshot],
        token: str | None = None,
    ) -> None:
        self._host, self._port = host, port
        self._snapshot = snapshot
        self._expected = None if token is None else f"Bearer {token}".encode()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_AgentCollector(snapshot))
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            return self._port
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        log.info("health and metrics on http://%s:%d/", self._host, self.port)

    async def serve(self) -> None:
        """Runs until cancelled, then closes the listening socket."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        try:
            await asyncio.Event().wait()
        finally:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            status, ctype, body = self._route(head[:_MAX_REQUEST_HEAD])
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            status, ctype, body = 400, "text/plain", b"bad request\n"
        head_out = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {ctype}\r\n"
            + ('WWW-Authenticate: Bearer realm="coldtrace-edge"\r\n' if status == 401 else "")
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head_out.encode() + body)
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    def _authorized(self, head: bytes) -> bool:
        if self._expected is None:
            return True
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"authorization":
                return hmac.compare_digest(value.strip(), self._expected)
        return False

    def _route(self, head: bytes) -> tuple[int, str, bytes]:
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if not self._authorized(head):
            return 401, "text/plain", b"bearer token required\n"
        if len(parts) != 3 or parts[0] != b"GET":
            return 405, "text/plain", b"only GET\n"
        path = parts[1].split(b"?", 1)[0]
        if path == b"/healthz":
            snap = self._snapshot()
            body = json.dumps(snap.health(), indent=2).encode()
            return (503 if snap.stopping else 200), "application/json", body
        if path == b"/metrics":
            return 200, "text/plain; version=0.0.4; charset=utf-8", generate_latest(self.registry)
        return 404, "text/plain", b"not found\n"


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}
