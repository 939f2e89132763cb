"""Polling a condition while the code under test runs on the real clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


async def poll_until(check: Callable[[], Any], *, seconds: float, step: float = 0.02) -> None:
    """Returns once ``check()`` is true; fails the test after ``seconds``."""
    for _ in range(int(seconds / step)):
        if check():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"not true after {seconds} s")
