"""Mapping a reader's uptime onto the gateway's clock, for readers whose clock was never set.

A reader without NTP stamps reads and events with Uptime: microseconds since it booted. Its
boot instant on the gateway's clock is bounded by every message it sends: the message left
after it was stamped, so ``receipt - uptime`` is never earlier than the boot. The smallest such
value over a connection (the message that travelled fastest; the ConnectionAttemptEvent, sent
the moment we connect, gives a good first one) is the estimate. Reports the reader held back
(report triggers, buffering after a network blip) only ever raise ``receipt - uptime``, so they
cannot spoil it. A new connection starts a new estimate: the reader may have rebooted.

The estimate runs late by the fastest message's transit (milliseconds on a LAN), never early:
a read is never placed after its receipt.

>>> from datetime import UTC, datetime, timedelta
>>> t = datetime(2026, 1, 1, tzinfo=UTC)
>>> clock = ReaderUptime()
>>> clock.observe(5_000_000, t + timedelta(milliseconds=3))      # an event, 3 ms in transit
>>> clock.to_gateway_time(6_000_000, t + timedelta(seconds=40))  # a read held for 39 s
datetime.datetime(2026, 1, 1, 0, 0, 1, 3000, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

from datetime import datetime, timedelta


class ReaderUptime:
    """The boot instant of one reader, estimated over one connection. Not thread-safe: one
    connection's messages arrive on its one socket thread."""

    def __init__(self) -> None:
        self.boot: datetime | None = None
        """The estimated boot instant on the gateway's clock; None until a message told it."""

    def observe(self, uptime_us: int, received_at: datetime) -> None:
        """A message stamped ``uptime_us`` arrived at ``received_at``: tighten the estimate."""
        bound = received_at - timedelta(microseconds=uptime_us)
        if self.boot is None or bound < self.boot:
            self.boot = bound

    def to_gateway_time(self, uptime_us: int, received_at: datetime) -> datetime:
        """``uptime_us`` on the gateway's clock, never later than the message's receipt."""
        self.observe(uptime_us, received_at)
        assert self.boot is not None  # set by observe
        return min(self.boot + timedelta(microseconds=uptime_us), received_at)
