"""Real cloud processes for end-to-end tests, and a small edge-like sender.

``serve`` starts ``coldtrace cloud serve`` and ``processor`` starts ``coldtrace cloud process``,
each a real process on its own port and pool; ``send_stream`` behaves like the edge uplink as far
as the cloud can tell: contiguous batches, resend from ``expected_seq`` on 409, retry on 5xx and
connection errors, resend what was not acknowledged.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO
from uuid import UUID

import httpx

from coldtrace.devservices import free_port
from protocols.batch import Batch
from tests.support.cloud_ingest import Gateway, batch_of, gz

FAST_ENV = {
    "COLDTRACE_CLOUD_PROCESSOR__POLL_INTERVAL": "PT0.5S",
    "COLDTRACE_CLOUD_PROCESSOR__RECONNECT_DELAY": "PT0.2S",
    "COLDTRACE_CLOUD_POOL_TIMEOUT": "PT3S",
    # Test data carries fixed 2026 dates; the default one-year backlog horizon would refuse them
    # from 2027 on. Tests of the horizon itself set their own.
    "COLDTRACE_CLOUD_ADMISSION__BACKLOG_HORIZON": "P3650D",
}


@dataclass
class CloudProcess:
    proc: subprocess.Popen[bytes]
    base_url: str

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


def _env() -> dict[str, str]:
    return {**os.environ, **FAST_ENV}


def wait_until_serving(
    proc: subprocess.Popen[bytes], url: str, log: IO[bytes] | None = None, seconds: float = 30
) -> None:
    """Polls ``url`` until it answers 200; fails at once if ``proc`` exits (with the tail of
    ``log``, its stderr, when given) and after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            tail = b""
            if log is not None:
                log.seek(0)
                tail = log.read()[-2000:]
            raise AssertionError(f"cloud serve exited during start-up: {tail!r}")
        assert time.monotonic() < deadline, f"cloud serve did not start in {seconds:g} s"
        time.sleep(0.05)


@contextmanager
def serve(database_url: str, *extra: str, port: int | None = None) -> Iterator[CloudProcess]:
    """``coldtrace cloud serve`` on a free port, ready (``/openapi.json`` answers) when yielded."""
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "coldtrace", "cloud", "serve", "--database-url", database_url,
         "--port", str(port), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(proc, base + "/openapi.json")
        yield CloudProcess(proc, base)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)


@contextmanager
def processor(database_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """``coldtrace cloud process``, stopped with SIGTERM (it finishes the batch in hand)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "coldtrace", "cloud", "process", "--database-url", database_url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(),
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)


@dataclass
class SendLog:
    acked: int = 0
    statuses: list[int] = field(default_factory=list)
    errors: int = 0
    watches: list[tuple[int, asyncio.Event]] = field(default_factory=list)

    def reached(self, seq: int) -> asyncio.Event:
        """An event set once everything up to ``seq`` is acknowledged."""
        event = asyncio.Event()
        self.watches.append((seq, event))
        return event

    def ack(self, seq: int) -> None:
        self.acked = max(self.acked, seq)
        for target, event in self.watches:
            if self.acked >= target:
                event.set()


async def send_stream(
    urls: Sequence[str] | None,
    gateway: Gateway,
    boot: UUID,
    total: int,
    batch_size: int,
    *,
    duplicate: bool = False,
    log: SendLog | None = None,
    deadline_s: float = 60.0,
    url_of: object = None,
) -> SendLog:
    """Sends seq 1..total like the edge until everything is acknowledged.

    ``urls`` are tried in turn (a load balancer); with ``duplicate`` every batch also goes to the
    next worker at the same time, so two workers race on the same stream. ``url_of`` (a callable
    returning the current base URL) replaces ``urls`` when the server moves (restarts).
    """
    out = log or SendLog()
    turn = 0
    deadline = time.monotonic() + deadline_s
    async with httpx.AsyncClient(timeout=10) as client:
        while out.acked < total:
            assert time.monotonic() < deadline, f"stream not acknowledged: {out}"
            batch = batch_of(gateway.gateway_id, boot, out.acked + 1,
                             min(batch_size, total - out.acked), sensors=5)  # fmt: skip
            targets = _targets(urls, url_of, turn, duplicate)
            turn += 1
            results = await asyncio.gather(*(_post(client, t, gateway, batch) for t in targets))
            for response in results:
                if response is None:
                    out.errors += 1
                    continue
                out.statuses.append(response.status_code)
                if response.status_code == 200:
                    out.ack(int(response.json()["stored_through"]))
                elif response.status_code == 409:
                    out.ack(int(response.json()["detail"][0]["expected_seq"]) - 1)
            if all(r is None or r.status_code >= 500 for r in results):
                await asyncio.sleep(0.1)  # back off a little while the cloud is away
    return out


def _targets(urls: Sequence[str] | None, url_of: object, turn: int, duplicate: bool) -> list[str]:
    if url_of is not None:
        assert callable(url_of)
        return [str(url_of())]
    assert urls
    first = urls[turn % len(urls)]
    return [first, urls[(turn + 1) % len(urls)]] if duplicate else [first]


async def _post(
    client: httpx.AsyncClient, base: str, gateway: Gateway, batch: Batch
) -> httpx.Response | None:
    headers = {**gateway.headers, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    try:
        return await client.post(base + "/v1/batches", content=gz(batch), headers=headers)
    except httpx.TransportError:
        return None


async def wait_processed(url: str, expected_streams: int, timeout_s: float = 30.0) -> None:
    """Waits until every stream is processed as far as it is stored."""
    import psycopg

    deadline = time.monotonic() + timeout_s
    while True:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            cur = await conn.execute(
                "SELECT count(*) FILTER (WHERE processed_through = stored_through), count(*),"
                " max(p.last_error) FROM gateway_streams JOIN processor_streams p"
                " USING (gateway_id, boot_id)"
            )
            row = await cur.fetchone()
        assert row is not None
        if row[0] == row[1] == expected_streams:
            return
        assert time.monotonic() < deadline, f"not processed in time: {row}"
        await asyncio.sleep(0.1)
