"""Hostile requests against a real ``coldtrace cloud serve`` held to a memory limit.

The service runs as its own process with ``RLIMIT_AS`` set a little above its idle size (the
address space of Python, uvicorn, psycopg and the app plus ``HEADROOM``), so a request that
made it buffer or build something large would kill it with MemoryError instead of passing
quietly. Each hostile request must be answered 4xx (or 503 for the byte budget), never 5xx,
and ``/healthz`` must still answer afterwards.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from cloud.auth.model import Role
from cloud.auth.service import add_user
from cloud.ingest.auth import add_gateway
from coldtrace.devservices import free_port
from tests.support.cloud_processes import wait_until_serving

pytestmark = pytest.mark.integration
MiB = 1024 * 1024
HEADROOM = 448 * MiB
"""Address space allowed above the idle process: one default batch inflating (64 MiB), the
byte budget's worth of bodies in flight and their parsing fit; 300 MiB of anything does not."""
ENV = {
    "MALLOC_ARENA_MAX": "2",  # glibc reserves 64 MiB of address space per thread arena
    "COLDTRACE_CLOUD_LIMITS__BODY_IDLE_TIMEOUT": "PT1S",
    "COLDTRACE_CLOUD_LIMITS__BODY_TIMEOUT": "PT3S",
    "COLDTRACE_CLOUD_LIMITS__MAX_CONNECTIONS": "40",
}


def _vm(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text("ascii").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


@contextmanager
def limited_cloud(url: str) -> Iterator[tuple[str, int, subprocess.Popen[bytes]]]:
    """Measures the idle address space of ``cloud serve``, then runs it under that + HEADROOM."""
    with _serve(url, None) as (_, _, proc):
        idle = _vm(proc.pid, "VmSize")
    with _serve(url, idle + HEADROOM) as running:
        yield running


@contextmanager
def _serve(url: str, limit: int | None) -> Iterator[tuple[str, int, subprocess.Popen[bytes]]]:
    port = free_port()

    def cap() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    log = tempfile.TemporaryFile()  # noqa: SIM115  (closed in finally)
    proc = subprocess.Popen(
        [sys.executable, "-m", "coldtrace", "cloud", "serve", "--database-url", url,
         "--port", str(port), "--no-processor", "--no-scheduler", "--no-access-log"],
        stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, **ENV},
        preexec_fn=cap,  # noqa: PLW1509  (setrlimit in the child only, before exec)
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(proc, base + "/healthz", log)
        yield base, port, proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def raw(port: int, head: str, chunks: Iterator[bytes], pause: float = 0.0) -> int | None:
    """Sends a request by hand (a trickle, a lie about its length, a flood) and returns the
    status the server answered, or None when it closed the connection before answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(head.encode())
            for chunk in chunks:
                sock.sendall(chunk)
                if pause:
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: its answer may still be there
        try:
            answer = sock.recv(200)
        except ConnectionResetError:
            return None
    if not answer.startswith(b"HTTP/1.1 "):
        return None
    return int(answer.split()[1])


def _chunked(total: int, piece: int = MiB) -> Iterator[bytes]:
    block = b" " * piece
    for _ in range(total // piece):
        yield f"{len(block):x}\r\n".encode() + block + b"\r\n"
    yield b"0\r\n\r\n"


async def _seed(url: str) -> tuple[dict[str, str], dict[str, str]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        viewer = await add_user(conn, "hostile-viewer", Role.VIEWER)
        gateways = {f"gw-{i}": await add_gateway(conn, f"gw-{i}", None) for i in range(8)}
        await conn.commit()
    return {"Authorization": f"Bearer {viewer}"}, gateways


async def test_hostile_requests_under_a_memory_limit(timescale_url: str) -> None:
    viewer, gateways = await _seed(timescale_url)
    with limited_cloud(timescale_url) as (base, port, proc):
        statuses: dict[str, int | None] = {}
        # 300 MiB announced: refused from the header, before the token is looked at.
        statuses["asns 300 MiB declared"] = raw(
            port, "POST /v1/asns HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {300 * MiB}\r\n\r\n", iter([b"[" * 65536]),
        )  # fmt: skip
        # 64 MiB streamed without a length to an ordinary route: cut at its limit.
        statuses["profile 64 MiB chunked"] = raw(
            port, "PUT /v1/profiles/p1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n", _chunked(64 * MiB),
        )  # fmt: skip
        # A body that trickles in: ends at the idle timeout.
        statuses["trickle"] = raw(
            port, "PUT /v1/profiles/p1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n", iter([b" "] * 3), pause=1.5,
        )  # fmt: skip
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            reads = {
                "exposure at 9999": ("/v1/lots/1/exposure",
                                     {"bucket": "PT1M", "at": "9999-12-30T00:00:00Z"}),
                "epcis P99999999D": ("/v1/epcis/events",
                                     {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z",
                                      "sensors": "true", "sensor_interval": "P99999999D"}),
                "readings 1970-9999 by second": ("/v1/sensors/s/readings",
                                                 {"start": "1970-01-01T00:00:00Z",
                                                  "end": "9999-12-30T00:00:00Z", "bucket": "PT1S"}),
            }  # fmt: skip
            for name, (path, params) in reads.items():
                statuses[name] = (await client.get(path, params=params, headers=viewer)).status_code
            nan = await client.put(
                "/v1/profiles/p1", content=b'{"profile_id": "p1", "action_low": NaN}',
                headers={**viewer, "Content-Type": "application/json"},
            )  # fmt: skip
            statuses["NaN body"] = nan.status_code
            bomb = gzip.compress(b" " * (100 * MiB))
            token = gateways["gw-0"]
            zipped = await client.post(
                "/v1/batches", content=bomb,
                headers={"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"},
            )  # fmt: skip
            statuses["gzip bomb"] = zipped.status_code
            # Eight gateways at once, each a body that inflates to 60 MiB: the byte budget
            # (160 MiB) lets some in and answers the others 503 with Retry-After.
            large = gzip.compress(b" " * (60 * MiB))

            async def send(gateway: str) -> httpx.Response:
                return await client.post(
                    "/v1/batches", content=large,
                    headers={"Authorization": f"Bearer {gateways[gateway]}",
                             "Content-Encoding": "gzip"},
                )  # fmt: skip

            flood = await asyncio.gather(*(send(g) for g in gateways))
            # Many clients that connect and say nothing: above max_connections, 503.
            idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(45)]
            try:
                # The kernel completes the handshakes at once, but the server accepts them when
                # its loop gets to it: on a loaded machine a request on an older connection can
                # be read first. Asked again until the server has counted them (5 s at most).
                for _ in range(50):
                    crowded = await client.get("/healthz")
                    if crowded.status_code == 503:
                        break
                    await asyncio.sleep(0.1)
            finally:
                for sock in idle:
                    sock.close()
            await asyncio.sleep(0.5)
            health = await client.get("/healthz")
        assert proc.poll() is None, "the service died"
        peak = _vm(proc.pid, "VmHWM")
    for name, status in statuses.items():
        assert status is not None, name
        assert 400 <= status < 500, (name, status)
    assert statuses["asns 300 MiB declared"] == 413
    assert statuses["profile 64 MiB chunked"] == 413
    assert statuses["trickle"] == 408
    assert statuses["NaN body"] == 422
    assert statuses["gzip bomb"] == 413
    codes = sorted(r.status_code for r in flood)
    assert all(c in (422, 503) for c in codes), codes  # whitespace is no batch: 422
    assert 503 in codes
    assert all(r.headers["retry-after"] for r in flood if r.status_code == 503)
    assert crowded.status_code == 503
    assert health.status_code == 200
    print(f"peak resident {peak / MiB:.0f} MiB; flood answers {codes}")
