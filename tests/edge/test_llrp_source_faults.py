"""The LLRP source (real sllurp) against readers that fail: a bad header right after a good
report, a reader that answers the handshake with ERROR_MESSAGE, a reader busy with another
client. Each is a status with the reader's reason and a bounded number of dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest

from protocols.llrp.frame import Framer
from protocols.llrp.messages import Message, MessageType
from protocols.llrp.reports import LlrpStatus, ReaderEvent, StatusCode, response
from simulators.llrp_reader import MARKER_EPC, LlrpReaderSimulator, MalformedKind, SimulatorConfig
from simulators.scene import ParkedTags, Scene, dock_door
from tests.support.llrp import EPOCH, collecting, fast_config, load
from tests.support.waiting import poll_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def scene_in_front() -> Scene:
    scene = dock_door(seed=3)
    scene.add(ParkedTags(load(2, cases=6), x=0.0, y=0.3, spread=0.6))
    return scene


def sim_config() -> SimulatorConfig:
    return SimulatorConfig(port=0, speed=2.0, epoch=EPOCH)


async def test_a_bad_header_never_swallows_the_report_before_it() -> None:
    async with (
        LlrpReaderSimulator(scene_in_front(), sim_config()) as sim,
        collecting(fast_config(sim.port)) as (source, got),
    ):
        await got.until(lambda: len(got.reads) > 5)
        assert await sim.send_malformed(MalformedKind.AFTER_REPORT) == 1
        await got.until(lambda: got.states()[-2:] == ["offline", "online"])
        marker = [r for r in got.reads if r.epc == MARKER_EPC]
        assert len(marker) == 1, "the report sent in the same read as the bad header was lost"
        (letter,) = [d for d in got.dead if "stream broken" in d.reason]
        assert letter.raw.startswith(bytes.fromhex("003d00000004"))  # from the bad header on
        assert letter.raw.endswith(b"\xde\xad" * 16)  # in full, the tail included
        assert "part 1 of 1" in letter.reason
        assert source.connections == 2


@asynccontextmanager
async def refusing_reader(
    status: LlrpStatus | Callable[[int], LlrpStatus],
    then: bytes = b"",
) -> AsyncIterator[tuple[int, list[int]]]:
    """A reader that accepts the connection, then answers every request with ERROR_MESSAGE
    (``status``, or ``status(connection number)``), followed in the same write by ``then``."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        now = int(datetime.now(UTC).timestamp() * 1_000_000)
        writer.write(ReaderEvent(utc=now, connection_attempt=0).to_message(0).encode())
        framer = Framer()
        try:
            while data := await reader.read(4096):
                for frame in framer.feed(data):
                    if frame.message_type != MessageType.KEEPALIVE_ACK:
                        answer = status(len(connections)) if callable(status) else status
                        error = response(MessageType.ERROR_MESSAGE, frame.message_id, answer)
                        writer.write(error.encode() + then)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], connections
    finally:
        server.close()
        await server.wait_closed()


async def test_a_handshake_answered_with_error_message_gives_one_status_and_few_dead_letters() -> (
    None
):
    status = LlrpStatus(StatusCode.UNSUPPORTED_MESSAGE, "this reader is in maintenance mode")
    async with (
        refusing_reader(status) as (port, connections),
        collecting(fast_config(port)) as (_, got),
    ):
        await poll_until(lambda: len(connections) >= 6, seconds=15, step=0.05)
    assert got.states() == ["offline"]
    assert "M_UnsupportedMessage: this reader is in maintenance mode" in got.statuses[0].detail
    assert len(got.dead) == 1  # the same answer on every retry is kept once
    assert got.dead[0].raw[:2] == b"\x04\x64"  # ERROR_MESSAGE, header included


async def test_an_error_description_that_changes_on_every_retry_gives_one_status() -> None:
    """A reader whose description differs on every connection (a session number, a time in
    it): still one status (per status code), and the dead letters stay within the budget."""

    def status(connection: int) -> LlrpStatus:
        return LlrpStatus(StatusCode.UNSUPPORTED_MESSAGE, f"refused in session {connection}")

    async with (
        refusing_reader(status) as (port, connections),
        collecting(fast_config(port)) as (_, got),
    ):
        await poll_until(lambda: len(connections) >= 6, seconds=15, step=0.05)
    assert got.states() == ["offline"]
    assert "M_UnsupportedMessage: refused in session 1" in got.statuses[0].detail
    assert 1 <= len(got.dead) <= 16  # each different answer once, within the budget


async def test_messages_after_an_ending_error_in_the_same_read_are_not_handed_to_sllurp() -> None:
    """The ERROR_MESSAGE ends the attempt and drops the socket; a KEEPALIVE in the same TCP
    read used to reach sllurp anyway, which could not answer on the closed socket: one dead
    letter "sllurp refused message: Not connected" per retry."""
    status = LlrpStatus(StatusCode.UNSUPPORTED_MESSAGE, "busy")
    keepalive = Message(MessageType.KEEPALIVE, 7).encode()
    async with (
        refusing_reader(status, then=keepalive) as (port, connections),
        collecting(fast_config(port)) as (_, got),
    ):
        await poll_until(lambda: len(connections) >= 6, seconds=15, step=0.05)
    assert got.states() == ["offline"]
    assert [d.reason for d in got.dead] == [
        "the reader answered with ERROR_MESSAGE: M_UnsupportedMessage: busy"
    ]


async def test_a_reader_busy_with_another_client_is_reported_as_such() -> None:
    async with (
        LlrpReaderSimulator(scene_in_front(), sim_config()) as sim,
        collecting(fast_config(sim.port)) as (_, first),
    ):
        await first.until(lambda: len(first.reads) > 0)
        async with collecting(fast_config(sim.port, reader_id="dock-reader-2")) as (_, second):
            await second.until(lambda: bool(second.statuses))
            await asyncio.sleep(0.3)  # retries against the busy reader
        assert second.states() == ["offline"]
        assert "another client is connected" in second.statuses[0].detail
        assert second.reads == []
        assert first.states() == ["online"]  # the connected client is not disturbed


async def test_the_same_broken_header_on_every_connection_is_dead_lettered_once() -> None:
    async with (
        LlrpReaderSimulator(scene_in_front(), sim_config()) as sim,
        collecting(fast_config(sim.port)) as (source, got),
    ):
        for connection in (1, 2, 3):

            def inventorying(n: int = connection) -> bool:
                return source.connections == n and len(got.reads) > 0

            await got.until(inventorying)
            assert await sim.send_malformed(MalformedKind.HEADER) == 1
            await got.until(lambda: got.states()[-1:] == ["offline"])
        await got.until(lambda: source.connections == 4)
    assert len([d for d in got.dead if "stream broken" in d.reason]) == 1
    assert got.states() == ["online", "offline"] * 3 + ["online"]  # each loss is reported
