"""kill -9 a process writing to the outbox mid-batch, reopen, count.

Every append that returned is on disk, the sequence has no gap and no duplicate, and each
record is intact (its value encodes its own sequence number). Repeated over several kills of
the same file, so recovery after a crash is itself crash-safe.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge.outbox import SqliteOutbox, decode
from protocols.records import Reading

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    from edge.outbox import SqliteOutbox
    from protocols.records import Reading

    T0 = datetime(2026, 3, 1, tzinfo=UTC)

    async def main() -> None:
        outbox = await SqliteOutbox.open(Path(sys.argv[1]))
        seq = outbox.stats().last_seq
        while True:
            batch = [
                Reading(sensor_id="f/t", time=T0 + timedelta(seconds=s), value=float(s),
                        received_at=T0)
                for s in range(seq + 1, seq + 101)
            ]
            seq = await outbox.append(batch)
            # only now is the batch durable: report it, as a source would ack its device
            sys.stdout.write(f"{seq}\\n")
            sys.stdout.flush()

    asyncio.run(main())
    """
)


def _run_and_kill(path: Path, after_lines: int) -> int:
    """Starts a writer, kills it with SIGKILL after ``after_lines`` acks, returns the last ack."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None
    last = 0
    for _ in range(after_lines):
        line = proc.stdout.readline()
        assert line, "writer died before it was killed"
        last = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    # acks written to the pipe before the kill landed also returned from append
    for line in proc.stdout:
        last = int(line)
    proc.wait(10)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return last


@pytest.mark.integration
async def test_kill_9_mid_batch_loses_no_acknowledged_append(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    acked = 0
    for after in (15, 40, 7):
        acked = max(acked, _run_and_kill(path, after))
        # nothing is left mid-transaction: a plain reader sees a consistent file
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    async with await SqliteOutbox.open(path) as outbox:
        stats = outbox.stats()
        assert stats.last_seq >= acked  # every append that returned is there
        assert stats.last_seq % 100 == 0  # a batch is all or nothing
        rows = (await outbox.peek(1_000_000, 1 << 40)).records
    seqs = [row.seq for row in rows]
    assert seqs == list(range(1, stats.last_seq + 1))  # no gap, no duplicate
    assert stats.records == len(rows)
    for row in rows:
        record = decode(row.payload)
        assert isinstance(record, Reading)
        assert record.value == float(row.seq)
