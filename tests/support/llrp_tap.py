"""A TCP relay between an LLRP client and a reader that records what crosses it.

A reader emulator that does not log what it sends or receives can still be held to account:
the tap forwards every byte unchanged and keeps, per connection, the request types the client
sent and the tag reports the reader sent, decoded by llrpkit's codec (not ours, so a decoding
mistake of ours cannot hide on both sides). Stopping and starting it again keeps its port,
so it can stand in front of a reader that is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from llrpkit.protocol import decode_message, messages, params

from protocols.llrp.messages import MessageType

_HEADER = 10


@dataclass(frozen=True, slots=True)
class SentRead:
    """One TagReportData as the reader put it on the wire."""

    connection: int
    epc: str  # hex, upper case
    antenna: int | None
    first_seen_us: int | None
    rssi: int | None


@dataclass
class LlrpTap:
    """``async with LlrpTap(reader_port) as tap:`` then connect the client to ``tap.port``."""

    upstream_port: int
    host: str = "127.0.0.1"
    port: int = 0
    connections: int = 0
    requests: list[tuple[int, str]] = field(default_factory=list)
    """(connection, message type) of everything the client sent, in order."""
    reads: list[SentRead] = field(default_factory=list)
    open_connections: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def requested(self, message_type: MessageType) -> list[int]:
        """The connections on which the client sent ``message_type``, once per message."""
        return [c for c, name in self.requests if name == message_type.name]

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        number = self.connections
        self.open_connections += 1
        try:
            try:
                reader_r, reader_w = await asyncio.open_connection(self.host, self.upstream_port)
            except OSError:
                return  # the reader is away: the client sees its connection closed
            try:
                await asyncio.gather(
                    _pump(client_r, reader_w, lambda m: self._request(number, m)),
                    _pump(reader_r, client_w, lambda m: self._report(number, m)),
                )
            finally:
                reader_w.close()
        finally:
            client_w.close()
            self.open_connections -= 1
            self._tasks.discard(task)

    def _request(self, connection: int, message: bytes) -> None:
        kind = int.from_bytes(message[:2], "big") & 0x3FF
        try:
            name = MessageType(kind).name
        except ValueError:
            name = str(kind)
        self.requests.append((connection, name))

    def _report(self, connection: int, message: bytes) -> None:
        decoded = decode_message(message)
        if not isinstance(decoded, messages.RO_ACCESS_REPORT):
            return
        for trd in decoded.tag_report_datas:
            self.reads.append(_sent_read(connection, trd))


def _sent_read(connection: int, trd: params.TagReportData) -> SentRead:
    epc = trd.epc_parameter
    raw = epc.epc if isinstance(epc, params.EPC_96) else epc.epc.data
    return SentRead(
        connection=connection,
        epc=raw.hex().upper(),
        antenna=trd.antenna_id.antenna_id if trd.antenna_id else None,
        first_seen_us=(
            trd.first_seen_timestamp_utc.microseconds if trd.first_seen_timestamp_utc else None
        ),
        rssi=trd.peak_rssi.peak_rssi if trd.peak_rssi else None,
    )


async def _pump(
    source: asyncio.StreamReader,
    sink: asyncio.StreamWriter,
    record: Callable[[bytes], None],
) -> None:
    """Forward whole LLRP messages, recording each after it has been forwarded."""
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            header = await source.readexactly(_HEADER)
            length = int.from_bytes(header[2:6], "big")
            body = await source.readexactly(max(0, length - _HEADER))
            sink.write(header + body)
            await sink.drain()
            record(header + body)
    # One side has gone: end the other as well, as a direct connection would.
    sink.close()
