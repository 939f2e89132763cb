"""A raw LLRP client on our own codec, and a reader simulator to talk to (simulator tests)."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from protocols.llrp.frame import Framer
from protocols.llrp.messages import Message, MessageType, decode_message
from protocols.llrp.params import Parameter, tlv
from protocols.llrp.reports import ReaderEvent
from protocols.llrp.specs import (
    AI_STOP_DURATION,
    REPORT_N_OR_AISPEC_END,
    ROSPEC,
    ContentSelector,
)
from simulators.llrp_reader import LlrpReaderSimulator, SimulatorConfig
from simulators.scene import ParkedTags, Scene, dock_door
from tests.support.llrp import EPOCH, load

T = MessageType
TAGS = load(3, cases=4)


class RawClient:
    """A minimal LLRP client: send messages, read them back one by one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = Framer(versions=None)  # LLRP 1.1 answers too
        self.inbox: list[Message] = []
        self.next_id = 100

    async def send(self, type_: int, fields: bytes = b"", *params: object) -> int:
        self.next_id += 1
        message = Message(type_, self.next_id, fields, tuple(params))  # type: ignore[arg-type]
        self.writer.write(message.encode())
        await self.writer.drain()
        return self.next_id

    async def recv(self) -> Message:
        while not self.inbox:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("closed by the reader")
            self.inbox += [decode_message(f) for f in self.framer.feed(data)]
        return self.inbox.pop(0)

    async def expect(self, type_: int, skip: tuple[int, ...] = (T.KEEPALIVE,)) -> Message:
        async with asyncio.timeout(5):
            while True:
                message = await self.recv()
                if message.type == type_:
                    return message
                assert message.type in skip, message.name


def scene() -> Scene:
    s = dock_door(seed=4)
    s.add(ParkedTags(TAGS, x=0.0, y=0.3, spread=0.5))
    return s


@asynccontextmanager
async def reader(**config: object) -> AsyncIterator[tuple[LlrpReaderSimulator, RawClient]]:
    cfg = SimulatorConfig.model_validate({"port": 0, "speed": 4.0, "epoch": EPOCH, **config})
    async with LlrpReaderSimulator(scene(), cfg) as sim:
        r, w = await asyncio.open_connection("127.0.0.1", sim.port)
        client = RawClient(r, w)
        try:
            event = ReaderEvent.from_message(await client.expect(T.READER_EVENT_NOTIFICATION))
            assert event.connection_attempt == 0
            assert event.utc is not None
            yield sim, client
        finally:
            w.close()
            with contextlib.suppress(ConnectionError):  # the reader may have reset it
                await w.wait_closed()


def rospec(
    rospec_id: int = 1, start: int = 1, duration_ms: int = 100, *, with_report: bool = True
) -> Parameter:
    boundary = tlv(178, b"", tlv(179, bytes([start])), tlv(182, struct.pack(">BI", 0, 0)))
    ai = tlv(
        183,
        struct.pack(">HHH", 2, 1, 2),
        tlv(184, struct.pack(">BI", AI_STOP_DURATION, duration_ms)),
        tlv(186, struct.pack(">HB", 1, 1)),
    )
    selector = ContentSelector(
        antenna_id=True, peak_rssi=True, first_seen=True, tag_seen_count=True
    )
    report = tlv(237, struct.pack(">BH", REPORT_N_OR_AISPEC_END, 0), selector.to_parameter())
    parts = (boundary, ai, report) if with_report else (boundary, ai)
    return tlv(ROSPEC, struct.pack(">IBB", rospec_id, 0, 0), *parts)
