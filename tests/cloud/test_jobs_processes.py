"""Jobs once per interval across real processes: three ``coldtrace cloud serve`` on one database,
each running the scheduler with every job registered, run the rollup job once per interval
between them, never twice within one (without the schedule row each process would run it at each
of its ticks: up to twelve times per interval here)."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta

import psycopg
import pytest

from coldtrace.devservices import free_port
from tests.support.cloud_processes import FAST_ENV, wait_until_serving

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

EVERY = timedelta(seconds=2)
WATCH = timedelta(seconds=9)


@contextmanager
def _serve_with_fast_rollups(url: str) -> Iterator[subprocess.Popen[bytes]]:
    port = free_port()
    env = {**os.environ, **FAST_ENV, "COLDTRACE_CLOUD_JOBS__ROLLUP_INTERVAL": "PT2S"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "coldtrace", "cloud", "serve", "--database-url", url,
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        wait_until_serving(proc, f"http://127.0.0.1:{port}/openapi.json", seconds=90)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


async def _starts(url: str) -> tuple[list[datetime], int]:
    """Every start of the rollup job seen while watching, and how many runs were counted."""
    seen: list[datetime] = []
    first_runs: int | None = None
    runs = 0
    deadline = time.monotonic() + WATCH.total_seconds()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            cur = await conn.execute(
                "SELECT runs, last_started_at, last_error FROM job_schedule WHERE name = 'rollups'"
            )
            row = await cur.fetchone()
            if row is not None and row[1] is not None:
                assert row[2] is None, row[2]
                first_runs = row[0] if first_runs is None else first_runs
                runs = row[0] - first_runs
                if not seen or row[1] != seen[-1]:
                    seen.append(row[1])
            await asyncio.sleep(0.05)
    return seen, runs


async def test_three_service_processes_run_the_rollup_job_once_per_interval(
    timescale_url: str,
) -> None:
    with ExitStack() as stack:
        processes = [stack.enter_context(_serve_with_fast_rollups(timescale_url))
                     for _ in range(3)]  # fmt: skip
        seen, runs = await _starts(timescale_url)
        assert all(p.poll() is None for p in processes)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(seen)]
    assert runs == len(seen) - 1  # every run was seen: none hidden between two looks
    # once per interval (9 s / 2 s: 4 or 5 runs), a run never sooner than the interval
    assert 3 <= runs <= 5, gaps
    assert min(gaps) >= EVERY.total_seconds() - 0.01, gaps
