"""``overflow: raise`` on a full filesystem that something else then frees: the outbox says it
has room again at its next try, without waiting for an acknowledgement (the cloud is away).
Driven by ``test_outbox_disk_full.py`` on a tmpfs of 2 MiB in a private mount namespace.

Usage: ``python -m tests.edge.disk_full_raise_driver DIR``
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from edge.clock import SystemClock
from edge.outbox import OutboxFullError, OutboxLimits, OverflowPolicy, SqliteOutbox
from tests.edge.conftest import reading

RETRY = 0.3


async def main(folder: Path) -> dict[str, Any]:
    ballast = folder / "ballast"
    ballast.write_bytes(b"\0" * (1024 * 1024))  # another program's file on the same disk
    limits = OutboxLimits(
        max_records=1_000_000,
        max_bytes=1 << 30,
        overflow=OverflowPolicy.RAISE,
        reserve_bytes=128 * 1024,
        disk_retry=timedelta(seconds=RETRY),
    )
    out: dict[str, Any] = {"refused": False}
    async with await SqliteOutbox.open(folder / "outbox.db", limits, SystemClock()) as outbox:
        i = 0
        try:
            while i < 100_000:
                await outbox.append([reading(i + k) for k in range(50)])
                i += 50
        except OutboxFullError as err:
            out["refused"] = True
            out["message"] = str(err)
        out["appended"] = i
        stats = outbox.stats()
        out["full_when_refused"] = stats.full
        out["disk_full_when_refused"] = stats.disk_full
        ballast.unlink()  # space freed by someone else; the cloud is still away
        await asyncio.sleep(RETRY * 2)
        out["full_after_retry"] = outbox.stats().full
        out["appended_after"] = await outbox.append([reading(i + k) for k in range(50)])
        out["records"] = outbox.stats().records
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1])))))
