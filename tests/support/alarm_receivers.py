"""Real receivers for alarm notifications: an SMTP server (aiosmtpd) and an HTTP endpoint, both
on loopback in the test's event loop, keeping what they were sent."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: Message

    @property
    def subject(self) -> str:
        return str(make_header(decode_header(str(self.message["Subject"]))))

    @property
    def text(self) -> str:
        for part in self.message.walk():
            if part.get_content_type() == "text/plain":
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes)
                return payload.decode(part.get_content_charset() or "utf-8")
        raise AssertionError("no text/plain part")


@dataclass
class SmtpSink:
    port: int = 0
    mails: list[Mail] = field(default_factory=list)
    refuse: bool = False
    hold: bool = False
    """Take the message and never answer (a send in flight, for kill tests)."""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        if self.refuse:
            return "554 Transaction failed"
        if self.hold:
            self.holding.set()
            await self.released.wait()
            return "451 Try again later"
        content = envelope.content
        assert isinstance(content, bytes)
        self.mails.append(
            Mail(
                str(envelope.mail_from), list(envelope.rcpt_tos), email.message_from_bytes(content)
            )
        )
        self.arrived.set()
        return "250 OK"

    def url(self, to: str) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=coldtrace@example.org&to={to}"


@asynccontextmanager
async def smtp_sink() -> AsyncIterator[SmtpSink]:
    sink = SmtpSink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink), "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        sink.released.set()
        server.close()
        await server.wait_closed()


@dataclass
class HttpSink:
    port: int = 0
    posts: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    status: int = 200

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await reader.readline()).decode()
            headers: dict[str, str] = {}
            while (line := (await reader.readline()).decode().strip()) != "":
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            path = request.split(" ")[1]
            self.posts.append((path, headers, json.loads(body) if body else None))
            writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
        finally:
            writer.close()

    def url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.port}{path}"


@asynccontextmanager
async def http_sink() -> AsyncIterator[HttpSink]:
    sink = HttpSink()
    server = await asyncio.start_server(sink.handle, "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        server.close()
        await server.wait_closed()
