"""The contract every edge source follows.

A source is an async context manager that yields tuples of records, one tuple per device message
(an LLRP report, an MQTT message, an OPC-UA data-change notification):

    async with source:
        async for records in source:
            await outbox.append(records)   # durable before the loop asks for the next tuple

The consumer commits each tuple durably before it asks for the next one, and the source
acknowledges the device or broker (MQTT PUBACK, …) only when it is resumed, so nothing is
acknowledged that is not on disk. A consumer that cannot commit (outbox full) simply does not ask
for more: that is the back-pressure that reaches the device. The library behind a source never
leaks out of its module; errors leave as ``SourceError`` subclasses.

Exception tree::

    SourceError
    ├── TransientSourceError   connection lost, timeout: the supervisor retries with backoff
    └── PermanentSourceError   bad configuration, authentication: fail loudly, do not retry
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Protocol, Self

from protocols.records import Record


class SourceError(RuntimeError):
    """A source failed."""


class TransientSourceError(SourceError):
    """The device or broker went away; trying again later may work."""


class PermanentSourceError(SourceError):
    """Configuration or credentials are wrong; trying again will not help."""


class Source(Protocol):
    """Yields tuples of records; see the module docstring for the acknowledgement contract."""

    @property
    def name(self) -> str: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def __aiter__(self) -> AsyncIterator[tuple[Record, ...]]: ...
