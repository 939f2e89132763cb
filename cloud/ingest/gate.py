"""One batch per stream at a time in this process, waiting without a database connection.

Ingest serialises a stream's batches on its ``gateway_streams`` row. Requests for one stream
that reach a worker together (an edge resending after a timeout, a retry storm) used to wait for
that row lock each holding a pooled connection, until every connection waited on one stream and
other gateways got 503. Here they wait for an in-process lock first, holding nothing, for at
most ``wait``; then the one in front waits for the row at most the ingest ``lock_timeout``
(another worker's transaction on the same stream). Either bound ends in 503 with Retry-After,
quickly. A request whose client has gone is dropped while it waits: nobody would read its
acknowledgement, and its resend will do the work.

Exception tree: ``StreamBusyError`` and ``ClientGoneError`` are ``IngestError`` (503).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

from cloud.ingest import StorageUnavailableError

ClientGone = Callable[[], Awaitable[bool]]


class StreamBusyError(StorageUnavailableError):
    """Another request of the same stream held it longer than the wait allows."""

    code = "stream_busy"


class ClientGoneError(StorageUnavailableError):
    """The client disconnected while its batch waited; nothing was stored."""

    code = "client_gone"


@dataclass
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class StreamGate:
    """Per-stream locks of this process, created on demand and dropped when unused."""

    def __init__(self, wait: timedelta, poll: timedelta = timedelta(milliseconds=200)) -> None:
        self._wait = wait.total_seconds()
        self._poll = poll.total_seconds()
        self._entries: dict[tuple[str, UUID], _Entry] = {}

    @property
    def streams(self) -> int:
        """Streams with a request in hand or waiting (for tests and metrics)."""
        return len(self._entries)

    @asynccontextmanager
    async def hold(
        self, gateway_id: str, boot_id: UUID, client_gone: ClientGone
    ) -> AsyncIterator[None]:
        """Holds the stream for the block; raises StreamBusyError or ClientGoneError instead."""
        key = (gateway_id, boot_id)
        entry = self._entries.setdefault(key, _Entry())
        entry.users += 1
        try:
            await self._acquire(entry.lock, client_gone, key)
            try:
                yield
            finally:
                entry.lock.release()
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._entries[key]

    async def _acquire(
        self, lock: asyncio.Lock, client_gone: ClientGone, key: tuple[str, UUID]
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        while True:
            if await client_gone():
                raise ClientGoneError(f"the client went away while {key[0]}/{key[1]} waited")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise StreamBusyError(
                    f"stream {key[0]}/{key[1]} is busy with another request; retry later"
                )
            try:
                await asyncio.wait_for(lock.acquire(), min(self._poll, remaining))
            except TimeoutError:
                continue
            if await client_gone():
                lock.release()
                raise ClientGoneError(f"the client went away while {key[0]}/{key[1]} waited")
            return
