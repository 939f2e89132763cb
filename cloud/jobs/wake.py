"""Sleeping in a worker loop until it is woken, told to stop, or its period passes."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta


async def wait_any(first: asyncio.Event, second: asyncio.Event, period: timedelta) -> None:
    """Returns when either event is set or ``period`` passes; the waiters are cancelled and
    awaited before it returns, so no task is left pending."""
    waits = {asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())}
    try:
        await asyncio.wait(waits, timeout=period.total_seconds(), return_when="FIRST_COMPLETED")
    finally:
        for task in waits:
            task.cancel()
        for task in waits:
            with contextlib.suppress(asyncio.CancelledError):
                await task
