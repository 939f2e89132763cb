"""The private services: reused while running, never started twice, stopped for good."""

from __future__ import annotations

import socket

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
