"""The private services: reused while running, never started twice, stopped for good."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from coldtrace.devservices import MosquittoService

pytestmark = pytest.mark.integration


def test_a_broker_whose_pid_file_vanished_is_reused_not_started_twice(
    own_broker: MosquittoService,
) -> None:
    pid, port = own_broker._pid(), own_broker.port
    own_broker.pidfile.unlink()
    assert own_broker.running()
    assert own_broker.start() == f"mqtt://127.0.0.1:{port}"
    assert own_broker._pid() == pid


def test_stop_ends_the_broker_and_start_brings_it_back_on_its_port(
    own_broker: MosquittoService,
) -> None:
    port = own_broker.port
    own_broker.stop()
    assert not own_broker.running()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 0.5):
        pass
    own_broker.start()
    with socket.create_connection(("127.0.0.1", port), 2):
        pass


def test_starts_at_once_from_several_processes_make_one_broker() -> None:
    """Parallel test workers all start the shared services: one of them sets each up, the others
    find it running (a lock beside the service's folder)."""
    directory = Path(tempfile.mkdtemp(prefix="coldtrace-broker-", dir="/var/tmp"))
    directory.chmod(0o755)
    user = MosquittoService.default().user
    # Each starter imports first, then all start at the same instant, as workers would.
    starter = (
        "import sys, time; from pathlib import Path;"
        " from coldtrace.devservices import MosquittoService;"
        " time.sleep(max(0.0, float(sys.argv[2]) - time.time()));"
        f" print(MosquittoService(Path(sys.argv[1]), {user!r}).start())"
    )
    at = str(time.time() + 3)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", starter, str(directory / "broker"), at],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        urls = {proc.communicate(timeout=60)[0].strip() for proc in procs}
        assert all(proc.returncode == 0 for proc in procs)
        assert len(urls) == 1  # one port: every starter found the same broker
        conf = str(directory / "broker" / "mosquitto.conf").encode()
        brokers = [p for p in Path("/proc").glob("[0-9]*") if conf in _argv(p)]
        assert len(brokers) == 1
    finally:
        MosquittoService(directory / "broker", user).stop()
        shutil.rmtree(directory, ignore_errors=True)


def _argv(proc: Path) -> list[bytes]:
    try:
        return (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return []
