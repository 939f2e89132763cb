"""Real coldtrace processes for the end-to-end tests: cloud, edge agent, simulators, CLI.

Every process is ``python -m coldtrace ...`` started with ``subprocess``, its output appended to
a log file in the test's temporary folder (shown when an assertion about it fails). A process can
be stopped politely (SIGTERM, waited for) or killed (SIGKILL, as a crash or an OOM kill would).
Waits are bounded on the monotonic clock; none of them sleeps longer than it must.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from coldtrace.devservices import REPO_ROOT

CLOUD_ENV = {
    # The processor is woken by NOTIFY; polling is only its fallback, kept short for tests.
    "COLDTRACE_CLOUD_PROCESSOR__POLL_INTERVAL": "PT0.5S",
    "COLDTRACE_CLOUD_PROCESSOR__RECONNECT_DELAY": "PT0.2S",
    "COLDTRACE_CLOUD_PROCESSOR__RETRY_INITIAL": "PT0.1S",
    "COLDTRACE_CLOUD_PROCESSOR__RETRY_MAX": "PT0.5S",
    "COLDTRACE_CLOUD_POOL_TIMEOUT": "PT3S",
}


class ProcessError(AssertionError):
    """A process did not start, exited early, or did not answer in time (its log attached)."""


@dataclass
class Proc:
    """A running ``coldtrace`` child process and the log file it writes to."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def fail(self, message: str) -> ProcessError:
        tail = self.log_text()[-4000:]
        return ProcessError(f"{self.name}: {message}\n--- log tail ---\n{tail}")

    async def wait(self, within: float) -> int:
        """Waits for the process to end by itself; returns its exit code."""
        try:
            return await asyncio.to_thread(self.popen.wait, within)
        except subprocess.TimeoutExpired as err:
            raise self.fail(f"still running after {within} s") from err

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind runs in the process."""
        if self.running:
            self.popen.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.popen.wait, 10)

    async def terminate(self, within: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit code (the process is killed if it hangs)."""
        if self.running:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.popen.wait, within)
        except subprocess.TimeoutExpired as err:
            self.popen.kill()
            self.popen.wait(5)
            raise self.fail(f"did not stop within {within} s of SIGTERM") from err


def start(name: str, args: list[str], log: Path, env: Mapping[str, str] | None = None) -> Proc:
    """``python -m coldtrace <args>`` with stdout and stderr appended to ``log``."""
    with log.open("ab") as out:
        out.write(f"\n=== {name}: coldtrace {' '.join(args)}\n".encode())
        out.flush()
        popen = subprocess.Popen(
            [sys.executable, "-m", "coldtrace", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env={**os.environ, **(env or {})},
        )
    return Proc(name, popen, log)


async def wait_http_ok(proc: Proc, url: str, within: float = 30.0) -> None:
    """Waits until ``url`` answers 200 while ``proc`` runs."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=1.0) as client:
        while True:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if not proc.running:
                raise proc.fail(f"exited with {proc.popen.returncode} before {url} answered")
            if time.monotonic() > deadline:
                raise proc.fail(f"{url} did not answer 200 within {within} s")
            await asyncio.sleep(0.05)


async def cloud_serve(database_url: str, port: int, log: Path) -> Proc:
    """``coldtrace cloud serve`` (API, processor, jobs), ready once ``/healthz`` is 200."""
    proc = start(
        "cloud",
        ["cloud", "serve", "--database-url", database_url, "--port", str(port)],
        log,
        CLOUD_ENV,
    )
    await wait_http_ok(proc, f"http://127.0.0.1:{port}/healthz")
    return proc


async def edge_run(config: Path, health_port: int, log: Path) -> Proc:
    """``coldtrace edge run --config FILE``, ready once its ``/healthz`` answers."""
    proc = start("edge", ["edge", "run", "--config", str(config)], log)
    await wait_http_ok(proc, f"http://127.0.0.1:{health_port}/healthz")
    return proc


async def simulator(kind: str, args: list[str], log: Path, within: float = 30.0) -> tuple[
    Proc, dict[str, object]
]:  # fmt: skip
    """``coldtrace sim <kind> ...``; returns it with the JSON line it prints on start."""
    proc = start(f"sim-{kind}", ["sim", kind, *args], log)
    deadline = time.monotonic() + within
    while True:
        for line in proc.log_text().splitlines():
            if line.startswith("{"):
                info: dict[str, object] = json.loads(line)
                return proc, info
        if not proc.running:
            raise proc.fail(f"exited with {proc.popen.returncode} before it printed its address")
        if time.monotonic() > deadline:
            raise proc.fail(f"printed nothing within {within} s")
        await asyncio.sleep(0.05)


async def coldtrace(*args: str, expect: int = 0) -> str:
    """Runs one ``coldtrace`` command to completion; returns its stdout."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "coldtrace", *args],
        capture_output=True,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    output = done.stdout.decode(errors="replace")
    if done.returncode != expect:
        raise ProcessError(
            f"coldtrace {' '.join(args)} exited {done.returncode} (expected {expect}):\n"
            f"{output}\n{done.stderr.decode(errors='replace')}"
        )
    return output


async def gateway_token(database_url: str, gateway_id: str, site: str | None = None) -> str:
    """``coldtrace cloud gateway add``: the token is the last line it prints."""
    extra = ["--site", site] if site else []
    out = await coldtrace(
        "cloud", "gateway", "add", gateway_id, *extra, "--database-url", database_url
    )
    return out.strip().splitlines()[-1]


async def user_token(database_url: str, name: str, role: str) -> str:
    """``coldtrace users add``: the token is the first line it prints."""
    out = await coldtrace("users", "add", name, "--role", role, "--database-url", database_url)
    return out.strip().splitlines()[0]
